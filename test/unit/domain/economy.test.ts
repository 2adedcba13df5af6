import fc from 'fast-check';
import { DEFAULT_ECONOMY, diamondsForCoins, payoutCents } from '../../../shared/domain/economy';
import { BelowMinimumPayoutError } from '../../../shared/domain/errors';

describe('economy', () => {
  it('credits 1 diamond per coin by default', () => {
    expect(diamondsForCoins(DEFAULT_ECONOMY, 1234)).toBe(1234);
  });
  it('pays 0.5 cents a diamond: 2,000 diamonds are 10 USD', () => {
    expect(payoutCents(DEFAULT_ECONOMY, 2000)).toBe(1000);
  });
  it('refuses under the minimum and odd diamonds (not whole cents)', () => {
    expect(() => payoutCents(DEFAULT_ECONOMY, 1999)).toThrow(BelowMinimumPayoutError);
    expect(() => payoutCents(DEFAULT_ECONOMY, 2001)).toThrow(BelowMinimumPayoutError);
  });
  it('never invents a diamond or a cent (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 1, max: 20_000 }), (coins, bps) => {
        const diamonds = diamondsForCoins({ ...DEFAULT_ECONOMY, diamondsPerCoinBps: bps }, coins);
        return Number.isInteger(diamonds) && diamonds * 10_000 <= coins * bps;
      }),
    );
  });
});
