import { currencyForCountry } from './catalog';
import { EEA_COUNTRIES } from './regions';
import { AgeRestrictedError, RegionUnavailableError } from './errors';

/**
 * Who is calling, as the identity provider asserted it. The handlers build it from verified
 * JWT claims only: a user can never set their own birthdate or country.
 */
export interface Caller {
  userId: string;
  /** YYYY-MM-DD, or undefined when the provider did not assert one. */
  birthdate?: string;
  /** ISO 3166-1 alpha-2, upper case. */
  country?: string;
  parentalConsent: boolean;
  /** The identity provider's groups (the configured groups claim); `operators` makes an operator. */
  groups?: readonly string[];
}

const DEFAULT_AGE_OF_MAJORITY = 18;
/** Countries whose age of majority is not 18 (docs/API.md: 19 in KR). */
const AGE_OF_MAJORITY_BY_COUNTRY: Readonly<Record<string, number>> = { KR: 19 };
/** Below this age nobody may recharge or gift, consent or not. */
export const MINIMUM_AGE = 13;

export function ageOfMajority(country: string | undefined): number {
  return (country && AGE_OF_MAJORITY_BY_COUNTRY[country.toUpperCase()]) || DEFAULT_AGE_OF_MAJORITY;
}

/**
 * A real calendar date in YYYY-MM-DD: `0000-00-00`, `1990-13-45` and `2023-02-29` are not, and
 * `2024-02-29` is. The year starts at 0001 (there is no year 0 to be born in).
 */
export function isCalendarDate(value: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const daysInMonth = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  return day <= daysInMonth;
}

/**
 * Where Stripe Connect can pay out to a connected account: platforms in the US, the UK, the EEA,
 * Canada or Switzerland may transfer and pay out to connected accounts in any of those regions
 * (cross-border payouts, self-serve). Source: https://docs.stripe.com/connect/cross-border-payouts
 * (section "Availability", read 2026-11-30). Other countries need Stripe's sales team or Global
 * Payouts, which this product does not use.
 */
export const STRIPE_CONNECT_PAYOUT_COUNTRIES: ReadonlySet<string> = new Set([
  'US',
  'GB',
  'CA',
  'CH',
  // The EEA.
  ...EEA_COUNTRIES,
]);

/** Opening a payout account: the token's country must be one Stripe Connect pays out to. */
export function assertPayoutCountry(caller: Caller): void {
  if (caller.country === undefined || !STRIPE_CONNECT_PAYOUT_COUNTRIES.has(caller.country.toUpperCase())) {
    throw new RegionUnavailableError('Payouts are not available in your country.');
  }
}

/** Going live: the product must be available in the token's country (it has a price list). */
export function assertLiveCountry(caller: Caller): void {
  if (caller.country === undefined)
    throw new RegionUnavailableError('Your country is unknown, so going live is not available.');
  currencyForCountry(caller.country);
}

/** Age in whole years on `now` (UTC), from a YYYY-MM-DD birthdate. */
export function ageOn(birthdate: string, now: Date): number {
  const [year, month, day] = birthdate.split('-').map(Number) as [number, number, number];
  let age = now.getUTCFullYear() - year;
  const beforeBirthday = now.getUTCMonth() + 1 < month || (now.getUTCMonth() + 1 === month && now.getUTCDate() < day);
  if (beforeBirthday) age -= 1;
  return age;
}

/**
 * Consent a guardian gave or revoked in the app (kept on the teenager's wallet item). It decides
 * over the token's claim: a revocation wins over a claim that asserts consent, and a grant stands
 * without one. With no decision in the app, the identity provider's claim is what counts.
 */
export type AppConsent = 'granted' | 'revoked';

export function hasParentalConsent(caller: Caller, appConsent: AppConsent | null): boolean {
  if (appConsent === 'granted') return true;
  if (appConsent === 'revoked') return false;
  return caller.parentalConsent;
}

/** Under the age of majority and old enough to spend with consent: who may invite a guardian. */
export function isTeen(caller: Caller, now: Date): boolean {
  if (caller.birthdate === undefined) return false;
  const age = ageOn(caller.birthdate, now);
  return age >= MINIMUM_AGE && age < ageOfMajority(caller.country);
}

/** Recharging and gifting: majority, or from 13 with parental consent (the app's decision first). */
export function assertMaySpend(caller: Caller, now: Date, appConsent: AppConsent | null = null): void {
  if (caller.birthdate === undefined) throw new AgeRestrictedError('Your age is unknown, so spending is not allowed.');
  const age = ageOn(caller.birthdate, now);
  if (age < MINIMUM_AGE) throw new AgeRestrictedError(`You must be at least ${MINIMUM_AGE} to buy or send gifts.`);
  if (age < ageOfMajority(caller.country) && !hasParentalConsent(caller, appConsent)) {
    throw new AgeRestrictedError('Under the age of majority, buying and gifting need parental consent.');
  }
}

/** Going live and receiving payouts: majority only. */
export function assertAdult(caller: Caller, now: Date): void {
  const majority = ageOfMajority(caller.country);
  if (caller.birthdate === undefined || ageOn(caller.birthdate, now) < majority) {
    throw new AgeRestrictedError(`You must be at least ${majority} for this.`);
  }
}
