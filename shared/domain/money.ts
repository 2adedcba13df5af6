/**
 * Money is an integer amount of minor units (cents, pence) with its ISO 4217 currency.
 * Nothing on a money path is ever a float.
 */
export const CURRENCIES = ['USD', 'EUR', 'GBP'] as const;
export type Currency = (typeof CURRENCIES)[number];

export interface Money {
  amount: number;
  currency: Currency;
}

export function money(amount: number, currency: Currency): Money {
  assertWholeNonNegative(amount, 'amount');
  return { amount, currency };
}

/** Integer guard for every count of coins, diamonds and minor units. */
export function assertWholeNonNegative(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative safe integer, got ${value}`);
  }
}
