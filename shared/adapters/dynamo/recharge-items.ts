import type { Money } from '../../domain/money';
import type { ConditionFailure, Item, LedgerStore, PageKey, QueryInput, WriteOp } from '../../ports/ledger-store';
import { conditions } from './conditions';
import { keys, shardFor } from './keys';
import { CONSENT_EXPRESSIONS, type ConsentCondition, consentValues } from './wallet-items';

/**
 * The recharge item and what moves with it: the PaymentIntent link, the month's budget counter,
 * the webhook's processed-event markers, and the wallet writes only a recharge makes (its
 * opening check, the credit, a clawback, a dispute's give-back). Each op carries its key, its
 * condition and the values the condition needs; the use cases (recharge.ts, stripe-webhook.ts)
 * compose them into transactions and never see an expression.
 */

/**
 * Pending recharges are listed in the sparse `byStatus` index under this many partitions, so the
 * index has no single hot key when many people open payments at once; the expiry sweep reads each.
 */
export const PENDING_RECHARGE_BUCKETS = 8;

/** The `byStatus` partition of a recharge in the expiry index. */
export function pendingStatusPk(rechargeId: string): string {
  return `RECHARGE_PENDING#${shardFor(rechargeId, PENDING_RECHARGE_BUCKETS)}`;
}

/** A recharge's place in the expiry index: its bucket, sorted by the time it entered (or re-entered) it. */
export function pendingIndexEntry(rechargeId: string, since: string): { statusPk: string; statusSk: string } {
  return { statusPk: pendingStatusPk(rechargeId), statusSk: `${since}#${rechargeId}` };
}

/** What the wallet's limit must still be: the one a budget decision was made under. */
function monthlyLimitIs(limit: Money | null): { expression: string; values: Item } {
  if (limit === null) return { expression: 'attribute_not_exists(monthlyLimitAmount)', values: {} };
  return {
    expression: 'monthlyLimitAmount = :limitAmount AND monthlyLimitCurrency = :limitCurrency',
    values: { ':limitAmount': limit.amount, ':limitCurrency': limit.currency },
  };
}

/** "attribute equals what was read", where a missing attribute reads as 0. */
function equalsRead(attribute: 'coins' | 'owedCoins', placeholder: string, value: number): string {
  return value === 0
    ? `(attribute_not_exists(${attribute}) OR ${attribute} = ${placeholder})`
    : `${attribute} = ${placeholder}`;
}

/** The month a recharge's price counts toward. */
type BudgetShare = { userId: string; budgetMonth: string; priceMinor: number };

export const rechargeItems = {
  /**
   * A new pending recharge, in the expiry index from its creation. Written once: a second
   * recharge under the same id (the same Idempotency-Key) is `onTaken`.
   */
  opened(
    store: LedgerStore,
    recharge: Item & { rechargeId: string; createdAt: string },
    onTaken: ConditionFailure,
  ): WriteOp {
    return store.put(
      'recharge',
      {
        ...keys.recharge(recharge.rechargeId),
        ...recharge,
        ...pendingIndexEntry(recharge.rechargeId, recharge.createdAt),
      },
      { expression: conditions.isNew },
      onTaken,
    );
  },

  /** The PaymentIntent's link to its recharge, by which the webhook finds it; written once (`onTaken`). */
  paymentIntentLinked(
    store: LedgerStore,
    link: { paymentIntentId: string; rechargeId: string; userId: string },
    onTaken: ConditionFailure,
  ): WriteOp {
    return store.put(
      'payment intent mapping',
      {
        ...keys.paymentIntent(link.paymentIntentId),
        paymentIntentId: link.paymentIntentId,
        rechargeId: link.rechargeId,
        userId: link.userId,
      },
      { expression: conditions.isNew },
      onTaken,
    );
  },

  /**
   * The wallet still allows this recharge: unlocked, the same monthly limit as read, a
   * teenager's consent still holding (`consent`, shared/usecases/consent-condition.ts), and for a
   * first-recharge offer, no recharge credited yet. `onFailed` tells which from the wallet as it was.
   */
  walletAllowsRecharge(
    store: LedgerStore,
    userId: string,
    check: { limit: Money | null; firstRechargeOffer: boolean; consent: ConsentCondition | undefined },
    onFailed: ConditionFailure,
  ): WriteOp {
    const limitCondition = monthlyLimitIs(check.limit);
    const parts = [conditions.walletUnlocked, limitCondition.expression];
    if (check.firstRechargeOffer) parts.push('(attribute_not_exists(rechargesCredited) OR rechargesCredited = :zero)');
    if (check.consent) parts.push(CONSENT_EXPRESSIONS[check.consent]);
    return store.conditionCheck(
      'wallet unlocked, same budget',
      keys.wallet(userId),
      {
        expression: parts.join(' AND '),
        values: {
          ':false': false,
          ...limitCondition.values,
          ...(check.firstRechargeOffer && { ':zero': 0 }),
          ...(check.consent && consentValues(check.consent)),
        },
      },
      onFailed,
    );
  },

  /**
   * Moves a recharge from the version it was read at to its next state (`onConcurrent` when
   * another write got there first). `leavePendingIndex` takes it out of the expiry index.
   */
  transition(
    store: LedgerStore,
    recharge: { rechargeId: string; version: number },
    set: Record<string, unknown>,
    options: { leavePendingIndex?: boolean },
    onConcurrent: ConditionFailure,
  ): WriteOp {
    const names: Record<string, string> = { '#version': 'version' };
    const values: Item = { ':read': recharge.version, ':one': 1 };
    const assignments = ['#version = #version + :one'];
    for (const [index, [attribute, value]] of Object.entries(set).entries()) {
      names[`#a${index}`] = attribute;
      values[`:v${index}`] = value;
      assignments.push(`#a${index} = :v${index}`);
    }
    const expression = `SET ${assignments.join(', ')}${options.leavePendingIndex ? ' REMOVE statusPk, statusSk' : ''}`;
    return store.update(
      `recharge ${recharge.rechargeId}`,
      keys.recharge(recharge.rechargeId),
      { expression, condition: '#version = :read', values, names },
      onConcurrent,
    );
  },

  /**
   * Adds a recharge's price to its month. With a bound ("spent <= limit - price", since a
   * condition cannot add), the condition is in the write, so concurrent recharges and credits
   * cannot pass the limit together (`onFull`).
   */
  budgetHeld(
    store: LedgerStore,
    share: BudgetShare,
    currency: string,
    boundMinor: number | undefined,
    onFull: ConditionFailure,
  ): WriteOp {
    const key = keys.budgetMonth(share.userId, share.budgetMonth);
    const values = { ':price': share.priceMinor, ':currency': currency };
    if (boundMinor === undefined)
      return store.update('budget month', key, {
        expression: 'ADD spentMinor :price SET currency = :currency',
        values,
      });
    return store.update(
      'budget month',
      key,
      {
        expression: 'ADD spentMinor :price SET currency = :currency',
        condition: 'attribute_not_exists(spentMinor) OR spentMinor <= :bound',
        values: { ...values, ':bound': boundMinor },
      },
      onFull,
    );
  },

  /** A cancelled or expired recharge, or one refunded over budget, stops counting toward its month. */
  budgetReleased(store: LedgerStore, share: BudgetShare, onShort: ConditionFailure): WriteOp {
    return store.update(
      'budget release',
      keys.budgetMonth(share.userId, share.budgetMonth),
      {
        expression: 'ADD spentMinor :minus',
        condition: 'spentMinor >= :price',
        values: { ':minus': -share.priceMinor, ':price': share.priceMinor },
      },
      onShort,
    );
  },

  /** A month that already counts a recharge is still within the limit in force (`onOver` if not). */
  budgetWithinLimit(
    store: LedgerStore,
    share: Pick<BudgetShare, 'userId' | 'budgetMonth'>,
    limitMinor: number,
    onOver: ConditionFailure,
  ): WriteOp {
    return store.conditionCheck(
      'budget holds the payment',
      keys.budgetMonth(share.userId, share.budgetMonth),
      { expression: 'attribute_not_exists(spentMinor) OR spentMinor <= :limit', values: { ':limit': limitMinor } },
      onOver,
    );
  },

  /**
   * The marker of a Stripe event applied: written once, so a redelivered event is `onDuplicate`.
   * TTL (`expiresAt`, epoch seconds) removes it long after Stripe stops retrying.
   */
  eventProcessed(
    store: LedgerStore,
    event: { id: string; type: string },
    marker: { processedAt: string; expiresAt: number },
    onDuplicate: ConditionFailure,
  ): WriteOp {
    return store.put(
      'stripe event marker',
      {
        ...keys.stripeEvent(event.id),
        eventId: event.id,
        eventType: event.type,
        processedAt: marker.processedAt,
        expiresAt: marker.expiresAt,
      },
      { expression: conditions.isNew },
      onDuplicate,
    );
  },

  walletCredited,
  walletClawedBack,
  walletGivenBack,
};

/** The balances and limit a wallet write of the webhook decided on. */
interface BalancesRead {
  coins: number;
  owedCoins: number;
  monthlyLimit: Money | null;
}

/**
 * The wallet's side of a recharge's credit: coins and owed coins moved by the deltas, one more
 * recharge credited (a first-recharge offer is only for a wallet that has none), and for a
 * credit with a claim already on it, the dispute lock. Conditioned on the owed coins, the limit
 * the budget decision used, and (when coins are taken back at once) the balance it read.
 */
function walletCredited(
  store: LedgerStore,
  userId: string,
  before: BalancesRead,
  credit: { coinsDelta: number; owedDelta: number; takesBack: boolean; locks: boolean },
  onConcurrent: ConditionFailure,
): WriteOp {
  const limit = monthlyLimitIs(before.monthlyLimit);
  const walletCondition = [equalsRead('owedCoins', ':owedBefore', before.owedCoins), limit.expression];
  if (credit.takesBack) walletCondition.push(equalsRead('coins', ':coinsBefore', before.coins));
  return store.update(
    'wallet credit',
    keys.wallet(userId),
    {
      expression: `SET coins = if_not_exists(coins, :zero) + :coinsDelta, owedCoins = if_not_exists(owedCoins, :zero) + :owedDelta, rechargesCredited = if_not_exists(rechargesCredited, :zero) + :one${credit.locks ? ', locked = :true, lockReason = :dispute' : ''}`,
      condition: walletCondition.join(' AND '),
      values: {
        ':zero': 0,
        ':one': 1,
        ':coinsDelta': credit.coinsDelta,
        ':owedDelta': credit.owedDelta,
        ':owedBefore': before.owedCoins,
        ...limit.values,
        ...(credit.takesBack && { ':coinsBefore': before.coins }),
        ...(credit.locks && { ':true': true, ':dispute': 'dispute' }),
      },
    },
    onConcurrent,
  );
}

/**
 * A dispute's or refund's clawback: `take` coins out of the balance, `owedAdded` into owed coins,
 * and the dispute lock when `locks`. Conditioned on the balance read, so a gift spending coins in
 * between makes it read again (`onConcurrent`).
 */
function walletClawedBack(
  store: LedgerStore,
  userId: string,
  coinsBefore: number,
  amounts: { take: number; owedAdded: number; locks: boolean },
  onConcurrent: ConditionFailure,
): WriteOp {
  return store.update(
    'wallet clawback',
    keys.wallet(userId),
    {
      expression: `SET coins = if_not_exists(coins, :zero) - :take, owedCoins = if_not_exists(owedCoins, :zero) + :owedAdded${amounts.locks ? ', locked = :true, lockReason = :dispute' : ''}`,
      condition: equalsRead('coins', ':coinsBefore', coinsBefore),
      values: {
        ':zero': 0,
        ':take': amounts.take,
        ':owedAdded': amounts.owedAdded,
        ':coinsBefore': coinsBefore,
        ...(amounts.locks && { ':true': true, ':dispute': 'dispute' }),
      },
    },
    onConcurrent,
  );
}

/**
 * A won dispute's give-back: owed coins forgiven first, the rest back into the balance.
 * Conditioned on the owed coins read (`onConcurrent`).
 */
function walletGivenBack(
  store: LedgerStore,
  userId: string,
  giveBack: { coinsBack: number; debtForgiven: number; owedBefore: number },
  onConcurrent: ConditionFailure,
): WriteOp {
  return store.update(
    'wallet give-back',
    keys.wallet(userId),
    {
      expression:
        'SET coins = if_not_exists(coins, :zero) + :coinsBack, owedCoins = if_not_exists(owedCoins, :zero) - :debtForgiven',
      condition: equalsRead('owedCoins', ':owedBefore', giveBack.owedBefore),
      values: {
        ':zero': 0,
        ':coinsBack': giveBack.coinsBack,
        ':debtForgiven': giveBack.debtForgiven,
        ':owedBefore': giveBack.owedBefore,
      },
    },
    onConcurrent,
  );
}

/** One page of one expiry-index bucket: recharges that entered it before `cutoff`. */
export function pendingBeforeQuery(bucket: number, cutoff: string, limit: number, startKey?: PageKey): QueryInput {
  return {
    indexName: 'byStatus',
    keyCondition: 'statusPk = :pk AND statusSk < :cutoff',
    values: { ':pk': `RECHARGE_PENDING#${bucket}`, ':cutoff': cutoff },
    limit,
    ...(startKey && { exclusiveStartKey: startKey }),
  };
}
