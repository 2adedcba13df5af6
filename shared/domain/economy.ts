import { BelowMinimumPayoutError } from './errors';

/**
 * The exchange rules between coins, diamonds and money. Configuration (docs/API.md, "Economy
 * defaults"); basis points keep every rate an integer.
 */
export interface Economy {
  /** Diamonds credited to the creator per coin gifted, in basis points (10,000 = 1 diamond per coin). */
  diamondsPerCoinBps: number;
  /** US cents paid out per diamond, in basis points of a cent (5,000 = 0.5 cents). */
  payoutCentsPerDiamondBps: number;
  minPayoutDiamonds: number;
  maxPayoutDiamondsPerDay: number;
}

export const DEFAULT_ECONOMY: Economy = {
  diamondsPerCoinBps: 10_000,
  payoutCentsPerDiamondBps: 5_000,
  minPayoutDiamonds: 2_000,
  maxPayoutDiamondsPerDay: 200_000,
};

const BASIS_POINTS = 10_000;

/** Diamonds a gift of `coins` credits; rounded down so no diamond is ever invented. */
export function diamondsForCoins(economy: Economy, coins: number): number {
  return Math.floor((coins * economy.diamondsPerCoinBps) / BASIS_POINTS);
}

/**
 * The payout amount in US cents for `diamonds`. A payout must be at least the minimum and a whole
 * number of cents (docs/API.md: BELOW_MINIMUM_PAYOUT), so nothing is lost to rounding.
 */
export function payoutCents(economy: Economy, diamonds: number): number {
  if (diamonds < economy.minPayoutDiamonds) {
    throw new BelowMinimumPayoutError(`A payout is at least ${economy.minPayoutDiamonds} diamonds.`);
  }
  const scaled = diamonds * economy.payoutCentsPerDiamondBps;
  if (scaled % BASIS_POINTS !== 0) {
    throw new BelowMinimumPayoutError('A payout must come to a whole number of cents.');
  }
  return scaled / BASIS_POINTS;
}
