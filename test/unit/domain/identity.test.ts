import { AgeRestrictedError, RegionUnavailableError } from '../../../shared/domain/errors';
import {
  ageOn,
  assertAdult,
  assertLiveCountry,
  assertMaySpend,
  assertPayoutCountry,
  isCalendarDate,
  isTeen,
  type Caller,
} from '../../../shared/domain/identity';

const now = new Date('2026-11-26T12:00:00Z');
const caller = (birthdate: string | undefined, country = 'US', parentalConsent = false): Caller => ({
  userId: 'u',
  ...(birthdate && { birthdate }),
  country,
  parentalConsent,
});

describe('age rules', () => {
  it('counts whole years around the birthday', () => {
    expect(ageOn('2008-11-26', now)).toBe(18);
    expect(ageOn('2008-11-27', now)).toBe(17);
  });
  it('lets adults spend and go live', () => {
    expect(() => assertMaySpend(caller('2008-11-26'), now)).not.toThrow();
    expect(() => assertAdult(caller('2008-11-26'), now)).not.toThrow();
  });
  it('refuses under 13 even with consent', () => {
    expect(() => assertMaySpend(caller('2013-11-27', 'US', true), now)).toThrow(AgeRestrictedError);
  });
  it('lets 13-17 spend only with parental consent, never go live', () => {
    expect(() => assertMaySpend(caller('2013-11-26', 'US', false), now)).toThrow(AgeRestrictedError);
    expect(() => assertMaySpend(caller('2013-11-26', 'US', true), now)).not.toThrow();
    expect(() => assertAdult(caller('2010-01-01', 'US', true), now)).toThrow(AgeRestrictedError);
  });
  it('uses 19 as the age of majority in KR', () => {
    // 18 years old: an adult in the US, a minor in KR.
    expect(() => assertAdult(caller('2007-11-27', 'US'), now)).not.toThrow();
    expect(() => assertAdult(caller('2007-11-27', 'KR'), now)).toThrow(AgeRestrictedError);
    expect(() => assertMaySpend(caller('2007-11-27', 'KR'), now)).toThrow(AgeRestrictedError);
    expect(() => assertMaySpend(caller('2007-11-27', 'KR', true), now)).not.toThrow();
    expect(() => assertAdult(caller('2007-11-26', 'KR'), now)).not.toThrow();
  });
  it('refuses an unknown age', () => {
    expect(() => assertMaySpend(caller(undefined), now)).toThrow(AgeRestrictedError);
  });
});

describe('claims the age and region rules rely on', () => {
  it('a birthdate must be a real calendar date', () => {
    for (const bad of [
      '0000-00-00',
      '1990-13-45',
      '2023-02-29',
      '1900-02-29',
      '1990-04-31',
      '1990-00-10',
      '1990-1-01',
      '19900101',
    ]) {
      expect([bad, isCalendarDate(bad)]).toEqual([bad, false]);
    }
    for (const good of ['2024-02-29', '2000-02-29', '1990-12-31', '0001-01-01'])
      expect([good, isCalendarDate(good)]).toEqual([good, true]);
  });
  it('a payout account needs a country Stripe Connect pays out to', () => {
    expect(() => assertPayoutCountry(caller('1990-01-01', 'CH'))).not.toThrow();
    expect(() => assertPayoutCountry(caller('1990-01-01', 'NO'))).not.toThrow();
    expect(() => assertPayoutCountry(caller('1990-01-01', 'IN'))).toThrow(RegionUnavailableError);
    expect(() => assertPayoutCountry({ userId: 'u', birthdate: '1990-01-01', parentalConsent: false })).toThrow(
      RegionUnavailableError,
    );
  });
  it('going live needs a country with a price list', () => {
    expect(() => assertLiveCountry(caller('1990-01-01', 'DE'))).not.toThrow();
    expect(() => assertLiveCountry(caller('1990-01-01', 'CH'))).toThrow(RegionUnavailableError);
    expect(() => assertLiveCountry({ userId: 'u', birthdate: '1990-01-01', parentalConsent: false })).toThrow(
      RegionUnavailableError,
    );
  });
  it('the app’s consent decision wins over the token’s claim; without one the claim counts', () => {
    const teen = (claim: boolean) => caller('2011-06-01', 'US', claim);
    expect(() => assertMaySpend(teen(false), now, 'granted')).not.toThrow();
    expect(() => assertMaySpend(teen(true), now, 'revoked')).toThrow(AgeRestrictedError);
    expect(() => assertMaySpend(teen(true), now, null)).not.toThrow();
    expect(() => assertMaySpend(teen(false), now, null)).toThrow(AgeRestrictedError);
    // Under 13, even an approval in the app does not allow spending.
    expect(() => assertMaySpend(caller('2014-01-01', 'US'), now, 'granted')).toThrow(AgeRestrictedError);
  });
  it('a teenager is 13 to under the age of majority of their country', () => {
    expect(isTeen(caller('2013-11-26'), now)).toBe(true);
    expect(isTeen(caller('2013-11-27'), now)).toBe(false);
    expect(isTeen(caller('2008-11-27'), now)).toBe(true);
    expect(isTeen(caller('2008-11-26'), now)).toBe(false);
    expect(isTeen(caller('2007-11-27', 'KR'), now)).toBe(true);
    expect(isTeen(caller(undefined), now)).toBe(false);
  });
});
