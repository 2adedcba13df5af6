import { AgeRestrictedError } from './errors';

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
}

const DEFAULT_AGE_OF_MAJORITY = 18;
/** Countries whose age of majority is not 18 (API.md: 19 in KR). */
const AGE_OF_MAJORITY_BY_COUNTRY: Readonly<Record<string, number>> = { KR: 19 };
/** Below this age nobody may recharge or gift, consent or not. */
export const MINIMUM_AGE = 13;

export function ageOfMajority(country: string | undefined): number {
  return (country && AGE_OF_MAJORITY_BY_COUNTRY[country.toUpperCase()]) || DEFAULT_AGE_OF_MAJORITY;
}

/** Age in whole years on `now` (UTC), from a YYYY-MM-DD birthdate. */
export function ageOn(birthdate: string, now: Date): number {
  const [year, month, day] = birthdate.split('-').map(Number) as [number, number, number];
  let age = now.getUTCFullYear() - year;
  const beforeBirthday = now.getUTCMonth() + 1 < month || (now.getUTCMonth() + 1 === month && now.getUTCDate() < day);
  if (beforeBirthday) age -= 1;
  return age;
}

/** Recharging and gifting: majority, or from 13 with parental consent. */
export function assertMaySpend(caller: Caller, now: Date): void {
  if (caller.birthdate === undefined) throw new AgeRestrictedError('Your age is unknown, so spending is not allowed.');
  const age = ageOn(caller.birthdate, now);
  if (age < MINIMUM_AGE) throw new AgeRestrictedError(`You must be at least ${MINIMUM_AGE} to buy or send gifts.`);
  if (age < ageOfMajority(caller.country) && !caller.parentalConsent) {
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
