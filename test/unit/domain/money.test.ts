import { money } from '../../../shared/domain/money';
import { packagesForCountry } from '../../../shared/domain/catalog';

describe('money', () => {
  it('holds whole, non-negative minor units only', () => {
    expect(money(0, 'USD')).toEqual({ amount: 0, currency: 'USD' });
    expect(money(129, 'EUR')).toEqual({ amount: 129, currency: 'EUR' });
    expect(() => money(1.5, 'USD')).toThrow(RangeError);
    expect(() => money(-1, 'USD')).toThrow(RangeError);
    expect(() => money(Number.MAX_SAFE_INTEGER + 1, 'USD')).toThrow(RangeError);
    expect(() => money(Number.NaN, 'GBP')).toThrow(RangeError);
  });

  it('names the field and the value it refused (what an operator reads in the log)', () => {
    expect(() => money(-1, 'USD')).toThrow('amount must be a non-negative safe integer, got -1');
  });

  it('builds every catalog price', () => {
    for (const country of ['US', 'GB', 'DE']) {
      for (const coinPackage of packagesForCountry(country).packages)
        expect(Number.isSafeInteger(coinPackage.price.amount)).toBe(true);
    }
  });
});
