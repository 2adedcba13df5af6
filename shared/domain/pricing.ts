import * as z from 'zod';
import { type CoinPackage, currencyForCountry } from './catalog';
import { PaymentMethodUnavailableError } from './errors';
import { type Currency, type Money, money } from './money';
import {
  CARD_SURCHARGE_BANNED,
  type Confirmation,
  METHOD_CONFIRMATION,
  type MethodRules,
  methodTakesCurrency,
  PAYMENT_METHODS,
  type PaymentMethod,
  whyMethodCannotBeEnabled,
} from './payment-methods';

/**
 * What a recharge costs, all in: the coins' value (the package's price list, less an offer's
 * discount), the platform's fee per package, and the method's fee per payment. Integers in minor
 * units, configured per country (and per method), `*` for every other country. With the defaults
 * (no fees) every price is the price list's, as before fees existed.
 */

/** A fee larger than this is a configuration mistake, not a fee (100.00 in any of our currencies). */
export const MAX_FEE_MINOR = 10_000;

const feeMinor = z.number().int().min(0).max(MAX_FEE_MINOR);
const countryKey = z.string().regex(/^([A-Z]{2}|\*)$/, 'a country code (upper case) or *');
const feeTable = z.record(countryKey, feeMinor);

export const feesSchema = z
  .strictObject({
    platform: feeTable.default({}),
    methods: z.partialRecord(z.enum(PAYMENT_METHODS), feeTable).default({}),
  })
  .superRefine((fees, context) => {
    for (const [country, amount] of Object.entries(fees.methods.card ?? {})) {
      if (amount === 0) continue;
      // `*` reaches the EEA and the UK too, so it may not carry a card fee either.
      if (country === '*' || CARD_SURCHARGE_BANNED.has(country))
        context.addIssue({
          code: 'custom',
          path: ['methods', 'card', country],
          message: `a card surcharge is not allowed in ${country === '*' ? 'every country (it reaches the EEA and the UK)' : country} (consumer cards, EEA and UK law)`,
        });
    }
  });
export type Fees = z.infer<typeof feesSchema>;

export interface PricingConfig extends MethodRules {
  /** The methods turned on, in the order the catalog lists them (card first by default). */
  methods: readonly PaymentMethod[];
  fees: Fees;
}

export const DEFAULT_PRICING: PricingConfig = {
  methods: ['card'],
  platformCountry: 'US',
  paypalConnectApproved: false,
  fees: { platform: {}, methods: {} },
};

/** Every configured method must be one the Stripe account can take: refused at start otherwise. */
export function checkPricingConfig(config: PricingConfig): string[] {
  const problems: string[] = [];
  for (const method of config.methods) {
    const why = whyMethodCannotBeEnabled(method, config);
    if (why !== undefined) problems.push(`PAYMENT_METHODS: ${method}: ${why}`);
  }
  if (!config.methods.includes('card')) problems.push('PAYMENT_METHODS: card must stay on (the default method)');
  return problems;
}

function feeFor(table: Record<string, number> | undefined, country: string): number {
  return table?.[country] ?? table?.['*'] ?? 0;
}

export interface MethodOffer {
  method: PaymentMethod;
  confirmation: Confirmation;
  fee: Money;
}

/** The methods a buyer in `country` can pay with, with each one's fee. */
export function methodsFor(config: PricingConfig, country: string): MethodOffer[] {
  const currency = currencyForCountry(country);
  return config.methods
    .filter((method) => methodTakesCurrency(method, currency))
    .map((method) => ({
      method,
      confirmation: METHOD_CONFIRMATION[method],
      fee: money(feeFor(config.fees.methods[method], country), currency),
    }));
}

export function platformFee(config: PricingConfig, country: string): Money {
  return money(feeFor(config.fees.platform, country), currencyForCountry(country));
}

/** The all-in price, broken down: the receipt repeats it, and `total` is what Stripe charges. */
export interface PriceBreakdown {
  /** The coins at the price list's price. */
  coins: Money;
  /** An offer's discount on them (0 without one). */
  discount: Money;
  platformFee: Money;
  methodFee: Money;
  total: Money;
}

/** The breakdown for one package, method and discount; refuses a method the buyer cannot use. */
export function quote(
  config: PricingConfig,
  country: string,
  coinPackage: CoinPackage,
  method: PaymentMethod,
  discountMinor: number,
): PriceBreakdown {
  const available = methodsFor(config, country).find((offer) => offer.method === method);
  if (available === undefined)
    throw new PaymentMethodUnavailableError(`Paying with ${method} is not available in ${country}.`);
  const currency: Currency = coinPackage.price.currency;
  if (discountMinor < 0 || discountMinor >= coinPackage.price.amount)
    throw new RangeError(`a discount of ${discountMinor} does not fit a price of ${coinPackage.price.amount}`);
  const fee = platformFee(config, country);
  const total = coinPackage.price.amount - discountMinor + fee.amount + available.fee.amount;
  return {
    coins: coinPackage.price,
    discount: money(discountMinor, currency),
    platformFee: fee,
    methodFee: available.fee,
    total: money(total, currency),
  };
}
