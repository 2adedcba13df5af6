import type { ConditionFailure, Item, LedgerStore, PageKey, QueryInput, WriteOp } from '../../ports/ledger-store';
import { conditions } from './conditions';
import { keys } from './keys';

/**
 * Offers (one `OFFERS` partition, read whole) and a user's first-recharge reservation, held by
 * the one recharge that reserved it. Each op carries its key, its condition and the values the
 * condition needs; offers.ts, recharge.ts and stripe-webhook.ts compose them.
 */
export const offerItems = {
  /** A new offer, written once. */
  created(store: LedgerStore, offer: Item & { offerId: string }): WriteOp {
    return store.put('offer', { ...keys.offer(offer.offerId), ...offer }, { expression: conditions.isNew });
  },

  /** An operator ends the offer at `at`; an offer already ended is `onAlreadyEnded`. */
  ended(store: LedgerStore, offerId: string, at: string, onAlreadyEnded: ConditionFailure): WriteOp {
    return store.update(
      'end offer',
      keys.offer(offerId),
      { expression: 'SET endedAt = :at', condition: 'attribute_not_exists(endedAt)', values: { ':at': at } },
      onAlreadyEnded,
    );
  },

  /** The offer a recharge is written under was not ended before `at` (an operator may end it in between). */
  stillRunning(store: LedgerStore, offerId: string, at: string, onEnded: ConditionFailure): WriteOp {
    return store.conditionCheck(
      'offer still running',
      keys.offer(offerId),
      { expression: 'attribute_not_exists(endedAt) OR endedAt > :now', values: { ':now': at } },
      onEnded,
    );
  },

  /**
   * A new recharge reserves the user's first-recharge offer: of two requests racing for it, the
   * second is `onTaken`.
   */
  firstRechargeReserved(
    store: LedgerStore,
    userId: string,
    hold: { rechargeId: string; offerId: string },
    onTaken: ConditionFailure,
  ): WriteOp {
    return store.update(
      'first-recharge offer reserved',
      keys.firstRechargeOffer(userId),
      {
        expression: 'SET rechargeId = :rechargeId, offerId = :offerId',
        condition: 'attribute_not_exists(rechargeId)',
        values: { ':rechargeId': hold.rechargeId, ':offerId': hold.offerId },
      },
      onTaken,
    );
  },

  /**
   * A paid recharge holds the reservation: it keeps its own, or takes it again after it was
   * released; another recharge holding it by now is `onHeldByAnother`.
   */
  firstRechargeHeld(
    store: LedgerStore,
    userId: string,
    hold: { rechargeId: string; offerId: string },
    onHeldByAnother: ConditionFailure,
  ): WriteOp {
    return store.update(
      'first-recharge offer held',
      keys.firstRechargeOffer(userId),
      {
        expression: 'SET rechargeId = :rechargeId, offerId = :offerId',
        condition: 'attribute_not_exists(rechargeId) OR rechargeId = :rechargeId',
        values: { ':rechargeId': hold.rechargeId, ':offerId': hold.offerId },
      },
      onHeldByAnother,
    );
  },

  /**
   * The recharge gives the reservation back, only if it holds it (`onNotHeld`): another
   * recharge's reservation is never released here.
   */
  firstRechargeReleased(store: LedgerStore, userId: string, rechargeId: string, onNotHeld: ConditionFailure): WriteOp {
    return store.update(
      'first-recharge offer released',
      keys.firstRechargeOffer(userId),
      {
        expression: 'REMOVE rechargeId, offerId',
        condition: 'rechargeId = :rechargeId',
        values: { ':rechargeId': rechargeId },
      },
      onNotHeld,
    );
  },
};

/** One page of the offers partition, old offers included. */
export function offersQuery(limit: number, consistent: boolean, startKey?: PageKey): QueryInput {
  return {
    keyCondition: 'pk = :pk',
    values: { ':pk': keys.offer('').pk },
    limit,
    consistent,
    ...(startKey && { exclusiveStartKey: startKey }),
  };
}
