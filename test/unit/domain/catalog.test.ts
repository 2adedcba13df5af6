import { findGift, GIFTS, PACKAGE_COINS, packagesForCountry } from '../../../shared/domain/catalog';
import { RegionUnavailableError, ValidationError } from '../../../shared/domain/errors';

describe('coin packages', () => {
  it.each([
    ['US', 'USD'],
    ['GB', 'GBP'],
    ['DE', 'EUR'],
    ['fr', 'EUR'],
  ])('%s pays in %s', (country, currency) => {
    const list = packagesForCountry(country);
    expect(list.currency).toBe(currency);
    expect(list.packages.map((p) => p.coins)).toEqual([...PACKAGE_COINS]);
    for (const p of list.packages) {
      expect(Number.isInteger(p.price.amount)).toBe(true);
      expect(p.price.currency).toBe(currency);
    }
  });

  it.each(['US', 'GB', 'DE'])('a larger package never costs more per coin (%s)', (country) => {
    const { packages } = packagesForCountry(country);
    for (let i = 1; i < packages.length; i += 1) {
      const smaller = packages[i - 1]!;
      const larger = packages[i]!;
      // Compare price per coin without floats: a/b <= c/d  <=>  a*d <= c*b.
      expect(larger.price.amount * smaller.coins).toBeLessThanOrEqual(smaller.price.amount * larger.coins);
    }
  });

  it.each(['JP', 'XX', 'KR'])('refuses %s with REGION_UNAVAILABLE', (country) => {
    expect(() => packagesForCountry(country)).toThrow(RegionUnavailableError);
  });
});

describe('gift catalog', () => {
  it('has a 1-coin rose, a mid gift and one of 10,000 coins or more', () => {
    expect(findGift('rose').coins).toBe(1);
    expect(GIFTS.some((g) => g.coins >= 50 && g.coins <= 1000)).toBe(true);
    expect(GIFTS.some((g) => g.coins >= 10_000)).toBe(true);
    expect(new Set(GIFTS.map((g) => g.id)).size).toBe(GIFTS.length);
  });
  it('refuses an unknown gift', () => {
    expect(() => findGift('dragon')).toThrow(ValidationError);
  });
});
