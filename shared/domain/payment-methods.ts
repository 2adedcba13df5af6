import type { Currency } from './money';
import { EEA_COUNTRIES } from './regions';

/**
 * Payment methods and Stripe's rules for them (docs/PAYMENTS.md has the sources). Availability is
 * configuration (`PAYMENT_METHODS`, `STRIPE_PLATFORM_COUNTRY`, `STRIPE_PAYPAL_CONNECT_APPROVED`)
 * checked against these rules when the configuration is read, so a deployment cannot offer a
 * method its Stripe account cannot take.
 */
export const PAYMENT_METHODS = ['card', 'paypal'] as const;
export type PaymentMethod = (typeof PAYMENT_METHODS)[number];

/**
 * How the customer confirms: a card in the page (Stripe.js; Apple Pay and Google Pay are cards
 * too), or a redirect to the method's own site and back to `returnUrl` (PayPal).
 */
export type Confirmation = 'card' | 'redirect';
export const METHOD_CONFIRMATION: Readonly<Record<PaymentMethod, Confirmation>> = {
  card: 'card',
  paypal: 'redirect',
};

export { EEA_COUNTRIES };

/**
 * Where a surcharge on consumer cards is against the law: the EEA (PSD2, Directive (EU)
 * 2015/2366, art. 62(4)) and the UK (Consumer Rights (Payment Surcharges) Regulations 2012, as
 * amended in 2018). A quote cannot tell a consumer card from a business one, so no card fee at all.
 */
export const CARD_SURCHARGE_BANNED: ReadonlySet<string> = new Set([...EEA_COUNTRIES, 'GB']);

/**
 * PayPal through Stripe is for Stripe accounts in Europe: the EEA, the UK and Switzerland
 * (docs.stripe.com/payments/paypal, "Business locations"). Where the buyer lives does not matter
 * (customer locations: worldwide). An account elsewhere (the US) cannot offer it through Stripe.
 */
export const PAYPAL_BUSINESS_COUNTRIES: ReadonlySet<string> = new Set([...EEA_COUNTRIES, 'GB', 'CH']);

/** PayPal's presentment currencies on Stripe that this product sells in (all three of ours are among them). */
export const PAYPAL_CURRENCIES: ReadonlySet<Currency> = new Set(['EUR', 'GBP', 'USD']);

export interface MethodRules {
  /** The platform's Stripe account's country. */
  platformCountry: string;
  /**
   * Stripe approved the platform's request to use PayPal with Connect. This product is a Connect
   * platform (creators are paid out through it), and Stripe gives PayPal to Connect platforms
   * only on request, and only to marketplaces that charge on the platform (ours do: separate
   * charges and transfers), never to platforms whose connected accounts take payments directly.
   */
  paypalConnectApproved: boolean;
}

/** Why a method cannot be enabled for this Stripe account, or undefined when it can. */
export function whyMethodCannotBeEnabled(method: PaymentMethod, rules: MethodRules): string | undefined {
  if (method === 'card') return undefined;
  if (!PAYPAL_BUSINESS_COUNTRIES.has(rules.platformCountry))
    return `PayPal through Stripe needs a Stripe account in the EEA, the UK or Switzerland, not ${rules.platformCountry}`;
  if (!rules.paypalConnectApproved)
    return 'PayPal on a Connect platform needs Stripe to approve the platform first (STRIPE_PAYPAL_CONNECT_APPROVED)';
  return undefined;
}

/** Whether an enabled method can take a payment in this currency (the buyer's country never matters to PayPal). */
export function methodTakesCurrency(method: PaymentMethod, currency: Currency): boolean {
  return method === 'card' || PAYPAL_CURRENCIES.has(currency);
}
