import type { LedgerEntry } from '../../domain/ledger';
import type { ConditionFailure, LedgerStore, WriteOp } from '../../ports/ledger-store';
import { conditions } from './conditions';
import { entryItem } from './items';
import { keys } from './keys';
import { CONSENT_EXPRESSIONS, type ConsentCondition, consentValues } from './wallet-items';

/**
 * A gift's named writes: the sender's debit, the credit to one of the creator's diamond shards,
 * and the gift's two ledger entries. The use case composes them (with the idempotency record)
 * into one transaction and never sees an expression.
 */
export const giftItems = {
  /**
   * The debit that subtracts: the coins must cover the cost, the wallet be unlocked and a
   * teenager's consent hold (`onRefused` tells which failed). Used when the balance was not
   * conditioned on (after a lost balance race); the balance is read after the commit.
   */
  debitSender(
    store: LedgerStore,
    senderId: string,
    cost: number,
    consent: ConsentCondition | undefined,
    onRefused: ConditionFailure,
  ): WriteOp {
    return store.update(
      'debit sender',
      keys.wallet(senderId),
      {
        expression: 'SET coins = coins - :cost',
        condition: debitGuard(consent),
        values: { ':cost': cost, ':false': false, ...consentValues(consent) },
      },
      onRefused,
    );
  },

  /**
   * The debit conditioned on the balance read: it writes the new balance, so the answer needs no
   * read after the commit, and only if the balance is still `seenCoins` (and the same guard as
   * `debitSender` holds). `onRefused` also sees a balance that merely moved since the read.
   */
  debitSenderFromSeen(
    store: LedgerStore,
    senderId: string,
    debit: { cost: number; seenCoins: number },
    consent: ConsentCondition | undefined,
    onRefused: ConditionFailure,
  ): WriteOp {
    return store.update(
      'debit sender',
      keys.wallet(senderId),
      {
        expression: 'SET coins = :newCoins',
        condition: `coins = :seen AND ${debitGuard(consent)}`,
        values: {
          ':newCoins': debit.seenCoins - debit.cost,
          ':seen': debit.seenCoins,
          ':cost': debit.cost,
          ':false': false,
          ...consentValues(consent),
        },
      },
      onRefused,
    );
  },

  /**
   * The creator's diamonds, added to one of their shards. With a stream's gift fence attribute
   * (`liveFence`) the credit is conditioned on it: once the end's transaction closed the fence, no
   * gift to the stream can commit (`onFenceClosed`). Without it, a credit never fails.
   */
  creditCreatorShard(
    store: LedgerStore,
    creator: { creatorId: string; shard: number },
    diamonds: number,
    liveFence: string | undefined,
    onFenceClosed: ConditionFailure,
  ): WriteOp {
    return store.update(
      'credit creator shard',
      keys.walletShard(creator.creatorId, creator.shard),
      {
        expression: 'ADD diamonds :diamonds',
        values: { ':diamonds': diamonds },
        ...(liveFence !== undefined && { condition: 'attribute_exists(#live)', names: { '#live': liveFence } }),
      },
      onFenceClosed,
    );
  },

  /** The sender's gift_sent entry, in their wallet partition. */
  sentEntry(store: LedgerStore, sent: LedgerEntry): WriteOp {
    return store.put('gift_sent entry', entryItem(keys.entry(sent.userId, sent.createdAt, sent.id), sent));
  },

  /**
   * The creator's gift_received entry on the credited shard's entry partition. It is also the
   * stream's gift record and the broadcast outbox: while it carries `unsentStatusPk` the sparse
   * byStatus index lists it (sorted by time, then id) as not yet broadcast.
   */
  receivedEntry(store: LedgerStore, shard: number, received: LedgerEntry, unsentStatusPk: string): WriteOp {
    return store.put(
      'gift_received entry',
      entryItem(keys.shardEntry(received.userId, shard, received.createdAt, received.id), received, {
        statusPk: unsentStatusPk,
        statusSk: `${received.createdAt}#${received.id}`,
      }),
    );
  },
};

/** What every debit requires: the coins cover the cost, the wallet is unlocked, consent holds. */
function debitGuard(consent: ConsentCondition | undefined): string {
  return `${conditions.coinsCoverCost} AND ${conditions.walletUnlocked}${
    consent ? ` AND ${CONSENT_EXPRESSIONS[consent]}` : ''
  }`;
}
