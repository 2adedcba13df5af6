import { AgeRestrictedError } from '../../../shared/domain/errors';
import { ageOn, assertAdult, assertMaySpend, type Caller } from '../../../shared/domain/identity';

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
