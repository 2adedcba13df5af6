/** Small formatting helpers: money, dates, idempotency keys. */
import type { Money } from './answers';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A random key for Idempotency-Key and requestId; getRandomValues works on plain http too. */
export function newKey(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `${prefix}-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}

/** Minor-unit digits of a currency (2 for USD, EUR, GBP; 0 for JPY). */
function currencyDigits(currency: string): number {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
}

/** Formats minor units exactly: the amount goes to Intl as a decimal string, never as a float. */
export function formatMoney(value: Money): string {
  const digits = currencyDigits(value.currency);
  const negative = value.amount < 0;
  const text = String(Math.abs(value.amount)).padStart(digits + 1, '0');
  const decimal = digits === 0 ? text : `${text.slice(0, -digits)}.${text.slice(-digits)}`;
  // Intl formats a decimal string exactly (Intl.NumberFormat v3); the DOM typings only know numbers.
  const format = new Intl.NumberFormat('en', { style: 'currency', currency: value.currency }).format as unknown as (
    input: string,
  ) => string;
  return `${negative ? '-' : ''}${format(decimal)}`;
}

/** "20", "20.5", "20,50" -> minor units, with integer arithmetic only; undefined when not a price. */
export function parseMoneyInput(input: string, currency: string): number | undefined {
  const digits = currencyDigits(currency);
  const match = /^\s*(\d{1,7})(?:[.,](\d{1,2}))?\s*$/.exec(input);
  if (!match) return undefined;
  const fraction = (match[2] ?? '').padEnd(digits, '0');
  if (fraction.length > digits) return undefined;
  return Number(match[1]) * 10 ** digits + (fraction === '' ? 0 : Number(fraction));
}

export function timeOf(iso: string | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? ''
    : date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
