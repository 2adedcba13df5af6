import type { ConditionFailure, ItemKey, LedgerStore, WriteOp } from '../../ports/ledger-store';
import { conditions } from './conditions';
import { keys } from './keys';

/** A client idempotency key, scoped to the caller and the route family. */
export interface IdempotencyKeyRef {
  userId: string;
  scope: string;
  key: string;
}

/** The success a request with this key had, as stored (shared/usecases/idempotency.ts). */
export interface IdempotencyRecord {
  fingerprint: string;
  status: number;
  /** The answer's body, as JSON. */
  answer: string;
  createdAt: string;
  /** Epoch seconds after which the key may be used afresh (also the item's TTL). */
  expiresAt: number;
}

/** The idempotency record's key and its one write. */
export const idempotencyItems = {
  key(ref: IdempotencyKeyRef): ItemKey {
    return keys.idempotency(ref.userId, ref.scope, ref.key);
  },

  /**
   * Records a request's success inside its money transaction, only where no live record is: the
   * key is new, or its record expired by `nowSeconds`. A live record fails the transaction
   * (`onLive`, given the record as it is), so two identical requests do the work once.
   */
  record(
    store: LedgerStore,
    ref: IdempotencyKeyRef,
    record: IdempotencyRecord,
    nowSeconds: number,
    onLive: ConditionFailure,
  ): WriteOp {
    return store.put(
      `idempotency ${ref.scope}`,
      { ...idempotencyItems.key(ref), ...record },
      { expression: `${conditions.isNew} OR expiresAt <= :now`, values: { ':now': nowSeconds } },
      onLive,
    );
  },
};
