import type { AppConsent } from './identity';
import type { Money } from './money';

/** The kinds of ledger entry (docs/API.md, wallet transactions). */
export const ENTRY_TYPES = [
  'recharge',
  'gift_sent',
  'gift_received',
  'payout_requested',
  'payout_paid',
  'payout_reversed',
  'chargeback',
  /**
   * A payment that succeeded when the month's budget could not hold it: refunded through Stripe,
   * nothing credited. All four deltas are 0; the entry records the money that came and went back.
   */
  'over_budget_refund',
  /** A dispute the platform won: what that dispute took comes back, owed coins first. */
  'dispute_won',
  /** Bonus coins of an offer, credited with their recharge: minted, but not bought. */
  'recharge_bonus',
] as const;
export type EntryType = (typeof ENTRY_TYPES)[number];

/**
 * An immutable ledger entry. Each number is a signed delta of the wallet field of the same name,
 * so for every wallet the sum of its entries is its balance. A correction is a new entry.
 */
export interface LedgerEntry {
  id: string;
  userId: string;
  type: EntryType;
  coins: number;
  owedCoins: number;
  diamonds: number;
  pendingDiamonds: number;
  createdAt: string;
  ref: Record<string, string | number>;
}

export type LockReason = 'owner' | 'dispute';

export interface Wallet {
  userId: string;
  coins: number;
  owedCoins: number;
  /** Available for payout: the main item plus every creator shard. */
  diamonds: number;
  pendingDiamonds: number;
  locked: boolean;
  lockReason: LockReason | null;
  monthlyLimit: Money | null;
  /** Shards this user's gift credits are spread over; 0 until they first go live. */
  creatorShards: number;
  /** A guardian's decision in the app about this teenager's consent; absent when there is none. */
  appConsent?: AppConsent | null;
  /** `guardian` when a guardian set the monthly limit: the teenager may only lower it. */
  budgetSetBy?: 'guardian' | null;
}

export function emptyWallet(userId: string): Wallet {
  return {
    userId,
    coins: 0,
    owedCoins: 0,
    diamonds: 0,
    pendingDiamonds: 0,
    locked: false,
    lockReason: null,
    monthlyLimit: null,
    creatorShards: 0,
  };
}
