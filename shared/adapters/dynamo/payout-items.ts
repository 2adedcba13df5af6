import type { LedgerEntry } from '../../domain/ledger';
import type { Money } from '../../domain/money';
import type {
  ConditionFailure,
  CreatorBalance,
  LedgerStore,
  PageKey,
  QueryInput,
  WriteOp,
} from '../../ports/ledger-store';
import { conditions } from './conditions';
import { entryItem } from './items';
import { keys } from './keys';

/** The sparse `byStatus` index partition of payouts not yet settled: the sweeper reads it. */
export const PAYOUT_OPEN = 'PAYOUT_OPEN';

/** Sort-key prefix of a creator's payout list items (`keys.userPayout`), and the first string after it. */
export const USER_PAYOUT_PREFIX = 'PAYOUT#';
export const USER_PAYOUT_PREFIX_END = 'PAYOUT$';

/** `status` is a DynamoDB reserved word. */
const STATUS_NAMES = { '#status': 'status' } as const;

/** Every write that changes a wallet's diamonds or pending diamonds on the main item bumps this (see readCreatorBalance). */
const BUMP_DIAMONDS_VERSION = 'diamondsVersion = if_not_exists(diamondsVersion, :zero) + :one';

/** UTC day counters are kept two days past their day, then TTL removes them. */
const PAYOUT_DAY_RETENTION_SECONDS = 3 * 24 * 60 * 60;

/** What a payout is when it is requested: the item the worker and the sweeper move along. */
export interface RequestedPayout {
  payoutId: string;
  userId: string;
  accountId: string;
  diamonds: number;
  amount: Money;
  createdAt: string;
}

/** Why the payout debit's condition failed, as the request must answer it. */
export interface DebitRefusals {
  /** The wallet is locked. */
  locked: () => Error;
  /** A concurrent payout folded the creator's shards since the balance was read: read again. */
  foldRaced: () => Error;
  /** The main item does not cover what the shards do not. */
  short: () => Error;
}

/**
 * The payout item's named writes (its state moves requested -> processing -> paid | failed), the
 * creator's wallet writes a payout makes (the debit into pending, and pending paid out or
 * returned), the UTC day's payout counter, and the queries the list and the sweeper read.
 */
export const payoutItems = {
  /**
   * The payout, `requested` and open in the sparse `byStatus` index (sorted by when it was last
   * pushed along). Its id is new (`onCollision`).
   */
  requested(store: LedgerStore, payout: RequestedPayout, onCollision: ConditionFailure): WriteOp {
    const { createdAt } = payout;
    return store.put(
      'payout',
      {
        ...keys.payout(payout.payoutId),
        payoutId: payout.payoutId,
        userId: payout.userId,
        accountId: payout.accountId,
        diamonds: payout.diamonds,
        amount: payout.amount,
        status: 'requested',
        createdAt,
        updatedAt: createdAt,
        statusPk: PAYOUT_OPEN,
        statusSk: createdAt,
        sweeps: 0,
        attempts: 0,
      },
      { expression: conditions.isNew },
      onCollision,
    );
  },

  /** The creator's list item that names the payout (its status lives on the payout); new (`onCollision`). */
  listed(store: LedgerStore, payout: RequestedPayout, onCollision: ConditionFailure): WriteOp {
    return store.put(
      'user payout',
      { ...keys.userPayout(payout.userId, payout.createdAt, payout.payoutId), payoutId: payout.payoutId },
      { expression: conditions.isNew },
      onCollision,
    );
  },

  /**
   * A delivery takes the payout: `processing`, one more attempt, and pushed along now (so the
   * sweeper waits again). Only an open payout (`onNotOpen`: settled already, or never requested).
   */
  processing(store: LedgerStore, payoutId: string, at: string, onNotOpen: ConditionFailure): WriteOp {
    return store.update(
      'payout processing',
      keys.payout(payoutId),
      {
        expression:
          'SET #status = :processing, updatedAt = :now, statusSk = :now, attempts = if_not_exists(attempts, :zero) + :one',
        condition: '#status IN (:requested, :processing)',
        names: STATUS_NAMES,
        values: { ':processing': 'processing', ':requested': 'requested', ':now': at, ':zero': 0, ':one': 1 },
      },
      onNotOpen,
    );
  },

  /**
   * The transfer was made: `paid`, with its transfer, and out of the open index. Only from
   * `processing` (`onNotProcessing`): exactly one delivery settles.
   */
  paid(
    store: LedgerStore,
    payoutId: string,
    transferId: string,
    at: string,
    onNotProcessing: ConditionFailure,
  ): WriteOp {
    return store.update(
      'payout paid',
      keys.payout(payoutId),
      {
        expression: 'SET #status = :paid, transferId = :transferId, updatedAt = :now REMOVE statusPk, statusSk',
        condition: '#status = :processing',
        names: STATUS_NAMES,
        values: { ':paid': 'paid', ':transferId': transferId, ':now': at, ':processing': 'processing' },
      },
      onNotProcessing,
    );
  },

  /**
   * Stripe refused the transfer for good: `failed`, with its code, and out of the open index. Only
   * from `processing` (`onNotProcessing`): exactly one delivery settles.
   */
  failed(
    store: LedgerStore,
    payoutId: string,
    failureCode: string,
    at: string,
    onNotProcessing: ConditionFailure,
  ): WriteOp {
    return store.update(
      'payout failed',
      keys.payout(payoutId),
      {
        expression: 'SET #status = :failed, failureCode = :code, updatedAt = :now REMOVE statusPk, statusSk',
        condition: '#status = :processing',
        names: STATUS_NAMES,
        values: { ':failed': 'failed', ':code': failureCode, ':now': at, ':processing': 'processing' },
      },
      onNotProcessing,
    );
  },

  /**
   * The sweeper claims a resend: the payout is pushed along now and counts one more sweep, only if
   * nothing moved it since the index was read (`onMoved`: same status, same `statusSk`).
   */
  swept(
    store: LedgerStore,
    seen: { payoutId: string; status: string; touchedAt: string },
    at: string,
    onMoved: ConditionFailure,
  ): WriteOp {
    return store.update(
      'payout swept',
      keys.payout(seen.payoutId),
      {
        expression: 'SET statusSk = :now, sweeps = if_not_exists(sweeps, :zero) + :one',
        condition: '#status = :status AND statusSk = :seen',
        names: STATUS_NAMES,
        values: { ':now': at, ':zero': 0, ':one': 1, ':status': seen.status, ':seen': seen.touchedAt },
      },
      onMoved,
    );
  },

  /**
   * The payout's debit, with the creator's shards folded in by the same write: the main item's
   * diamonds take what the shards gained since the last fold (`shardDiamondsFolded` moves up to
   * the shard total that was read), minus the payout, which goes to pending. Shards are never
   * written, so the fold cannot conflict with gifts landing on them; its condition (the wallet is
   * unlocked, the fold mark is still what was read, the main item covers what the shards do not)
   * sits on one item, and a failure is told apart by the item as it was (`refusals`).
   */
  debit(
    store: LedgerStore,
    userId: string,
    balance: CreatorBalance,
    diamonds: number,
    refusals: DebitRefusals,
  ): WriteOp {
    const foldDelta = balance.shardCredits - balance.shardDiamondsFolded;
    const need = diamonds - foldDelta;
    const foldedAsRead =
      balance.shardDiamondsFolded === 0
        ? '(attribute_not_exists(shardDiamondsFolded) OR shardDiamondsFolded = :foldedBefore)'
        : 'shardDiamondsFolded = :foldedBefore';
    const condition = [conditions.walletUnlocked, foldedAsRead, ...(need > 0 ? ['diamonds >= :need'] : [])].join(
      ' AND ',
    );
    return store.update(
      'payout debit',
      keys.wallet(userId),
      {
        expression: `SET diamonds = if_not_exists(diamonds, :zero) + :net, pendingDiamonds = if_not_exists(pendingDiamonds, :zero) + :diamonds, shardDiamondsFolded = :foldedAfter, ${BUMP_DIAMONDS_VERSION}`,
        condition,
        values: {
          ':net': foldDelta - diamonds,
          ':diamonds': diamonds,
          ':zero': 0,
          ':one': 1,
          ':false': false,
          ':foldedBefore': balance.shardDiamondsFolded,
          ':foldedAfter': balance.shardCredits,
          ...(need > 0 && { ':need': need }),
        },
      },
      (old) => {
        if (old?.locked === true) return refusals.locked();
        if (
          (typeof old?.shardDiamondsFolded === 'number' ? old.shardDiamondsFolded : 0) !== balance.shardDiamondsFolded
        )
          return refusals.foldRaced();
        return refusals.short();
      },
    );
  },

  /** A paid payout's pending diamonds go out for good; pending must cover them (`onShort`). */
  pendingPaidOut(store: LedgerStore, userId: string, diamonds: number, onShort: ConditionFailure): WriteOp {
    return store.update(
      'pending paid out',
      keys.wallet(userId),
      {
        expression: `SET pendingDiamonds = pendingDiamonds - :diamonds, ${BUMP_DIAMONDS_VERSION}`,
        condition: conditions.pendingCoversSettlement,
        values: { ':diamonds': diamonds, ':zero': 0, ':one': 1 },
      },
      onShort,
    );
  },

  /** A failed payout's pending diamonds come back to available; pending must cover them (`onShort`). */
  pendingReturned(store: LedgerStore, userId: string, diamonds: number, onShort: ConditionFailure): WriteOp {
    return store.update(
      'pending returned',
      keys.wallet(userId),
      {
        expression: `SET diamonds = diamonds + :diamonds, pendingDiamonds = pendingDiamonds - :diamonds, ${BUMP_DIAMONDS_VERSION}`,
        condition: conditions.pendingCoversSettlement,
        values: { ':diamonds': diamonds, ':zero': 0, ':one': 1 },
      },
      onShort,
    );
  },

  /**
   * The UTC day's counter takes the payout, on the condition that the day's total stays within
   * `maxPerDay` (`onOverCap`); TTL removes the counter a while after its day.
   */
  dayTaken(
    store: LedgerStore,
    userId: string,
    cap: { day: string; maxPerDay: number },
    diamonds: number,
    onOverCap: ConditionFailure,
  ): WriteOp {
    const { day, maxPerDay } = cap;
    const dayEndSeconds = Math.floor(Date.parse(`${day}T00:00:00.000Z`) / 1000) + 24 * 60 * 60;
    return store.update(
      'payout day',
      keys.payoutDay(userId, day),
      {
        expression: 'SET diamonds = if_not_exists(diamonds, :zero) + :diamonds, expiresAt = :expiresAt',
        condition: 'attribute_not_exists(diamonds) OR diamonds <= :bound',
        values: {
          ':diamonds': diamonds,
          ':zero': 0,
          ':bound': maxPerDay - diamonds,
          ':expiresAt': dayEndSeconds + PAYOUT_DAY_RETENTION_SECONDS,
        },
      },
      onOverCap,
    );
  },

  /** A failed payout gives its diamonds back to its day's allowance. No condition: it never fails the settlement. */
  dayReturned(store: LedgerStore, userId: string, day: string, diamonds: number): WriteOp {
    return store.update('payout day returned', keys.payoutDay(userId, day), {
      expression: 'ADD diamonds :minus',
      values: { ':minus': -diamonds },
    });
  },

  /** An immutable payout entry on the user's main partition; its id is new (`onCollision`). */
  entry(store: LedgerStore, entry: LedgerEntry, onCollision: ConditionFailure): WriteOp {
    return store.put(
      `${entry.type} entry`,
      entryItem(keys.entry(entry.userId, entry.createdAt, entry.id), entry),
      { expression: conditions.isNew },
      onCollision,
    );
  },
};

/**
 * One page of a creator's payout list items, newest first, up to and including `upper` (the
 * prefix's end, or a previous page's last sort key).
 */
export function userPayoutsQuery(userId: string, upper: string, limit: number): QueryInput {
  return {
    keyCondition: 'pk = :pk AND sk BETWEEN :lower AND :upper',
    values: { ':pk': keys.wallet(userId).pk, ':lower': USER_PAYOUT_PREFIX, ':upper': upper },
    ascending: false,
    limit,
  };
}

/** One page of open payouts nothing pushed along since `cutoff`, oldest first, from the sparse `byStatus` index. */
export function openPayoutsQuery(cutoff: string, limit: number, startKey?: PageKey): QueryInput {
  return {
    indexName: 'byStatus',
    keyCondition: 'statusPk = :open AND statusSk <= :cutoff',
    values: { ':open': PAYOUT_OPEN, ':cutoff': cutoff },
    ascending: true,
    limit,
    ...(startKey && { exclusiveStartKey: startKey }),
  };
}
