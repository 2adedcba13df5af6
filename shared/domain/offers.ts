import * as z from 'zod';
import { type CoinPackage, countriesWithPriceList, packagesForCountry } from './catalog';
import { CURRENCIES, type Currency } from './money';

/**
 * Special offers on coin packages: a time-boxed discount on a package's price, or
 * bonus coins on top of it; everywhere or in some countries; for anyone or for a user's first
 * recharge only (once per user). Pure rules here; storage and the operator routes are in
 * shared/usecases/offers.ts.
 */

export const OFFER_KINDS = ['discount', 'bonus'] as const;
export type OfferKind = (typeof OFFER_KINDS)[number];

/** A discount is a whole percentage of the price list's price, rounded down to the minor unit. */
export const MAX_DISCOUNT_PERCENT = 90;
/** An offer runs at most this long: a "special" offer that never ends is a price change. */
export const MAX_OFFER_DAYS = 90;

const wholeNumber = z.number().int().nonnegative();
export const offerRecord = z.object({
  offerId: z.string().min(1),
  packageId: z.string().min(1),
  kind: z.enum(OFFER_KINDS),
  discountPercent: wholeNumber.default(0),
  bonusCoins: wholeNumber.default(0),
  /** null: every country with a price list. */
  countries: z.array(z.string().regex(/^[A-Z]{2}$/)).nullable(),
  firstRechargeOnly: z.boolean(),
  startsAt: z.string().min(1),
  endsAt: z.string().min(1),
  /** Set when an operator ended it early. */
  endedAt: z.string().optional(),
  createdBy: z.string().min(1),
  createdAt: z.string().min(1),
});
export type Offer = z.infer<typeof offerRecord>;

/** When the offer stops applying: its end, or the moment an operator ended it. */
export function offerClosesAt(offer: Offer): string {
  return offer.endedAt !== undefined && offer.endedAt < offer.endsAt ? offer.endedAt : offer.endsAt;
}

export function offerIsOpen(offer: Offer, now: Date): boolean {
  const at = now.toISOString();
  return offer.startsAt <= at && at < offerClosesAt(offer);
}

export function offerCoversCountry(offer: Pick<Offer, 'countries'>, country: string): boolean {
  return offer.countries === null || offer.countries.includes(country);
}

/** What the offer changes on one package: minor units off its price, coins on top. */
export interface OfferTerms {
  discountMinor: number;
  bonusCoins: number;
}

export function offerTerms(
  offer: Pick<Offer, 'kind' | 'discountPercent' | 'bonusCoins'>,
  pkg: CoinPackage,
): OfferTerms {
  if (offer.kind === 'bonus') return { discountMinor: 0, bonusCoins: offer.bonusCoins };
  // Rounded down: the customer never pays less than the percentage says, and never a fraction.
  return { discountMinor: Math.floor((pkg.price.amount * offer.discountPercent) / 100), bonusCoins: 0 };
}

function currenciesOf(offer: Pick<Offer, 'countries'>): Currency[] {
  if (offer.countries === null) return [...CURRENCIES];
  const currencies = new Set(offer.countries.map((country) => packagesForCountry(country).currency));
  return [...currencies];
}

/**
 * "The more coins you buy, the less each costs" must hold with the offer too: the offered package,
 * at its offer price and with its bonus coins, may not cost less per coin than any larger package
 * at its regular price (the larger one may have no offer for this buyer, so its regular price is
 * the one to compare with). Cross-multiplied, in integers. An offer on the largest package can
 * only make it cheaper per coin, which the rule allows. Returns the problems found.
 */
export function perCoinOrderProblems(
  offer: Pick<Offer, 'kind' | 'discountPercent' | 'bonusCoins' | 'packageId' | 'countries'>,
): string[] {
  const problems: string[] = [];
  for (const currency of currenciesOf(offer)) {
    const country = countriesWithPriceList().find((candidate) => packagesForCountry(candidate).currency === currency);
    if (country === undefined) continue;
    const { packages } = packagesForCountry(country);
    const offered = packages.find((pkg) => pkg.id === offer.packageId);
    if (offered === undefined) continue;
    const terms = offerTerms(offer, offered);
    const price = offered.price.amount - terms.discountMinor;
    const coins = offered.coins + terms.bonusCoins;
    for (const larger of packages.filter((pkg) => pkg.coins > offered.coins)) {
      // larger.price / larger.coins <= price / coins
      if (larger.price.amount * coins > price * larger.coins)
        problems.push(
          `in ${currency}, ${offered.id} would cost less per coin (${price}/${coins}) than ${larger.id} (${larger.price.amount}/${larger.coins})`,
        );
    }
  }
  return problems;
}

/** Two offers on the same package whose times and countries overlap: a buyer would see two prices. */
export function offersOverlap(a: Offer, b: Pick<Offer, 'packageId' | 'countries' | 'startsAt' | 'endsAt'>): boolean {
  if (a.packageId !== b.packageId) return false;
  if (!(a.startsAt < b.endsAt && b.startsAt < offerClosesAt(a))) return false;
  if (a.countries === null || b.countries === null) return true;
  return a.countries.some((country) => b.countries?.includes(country));
}
