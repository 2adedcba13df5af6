import type { ConditionFailure, ItemKey, LedgerStore, PageKey, QueryInput, WriteOp } from '../../ports/ledger-store';
import { conditions } from './conditions';
import { ENTRY_PREFIX, keys, streamEventPartition } from './keys';

/** byStatus GSI partitions of stream items. A live stream is listed under LIVE, newest first. */
export const LIVE_STATUS_PK = 'LIVE';
/**
 * An ended stream stays findable here for a while, so the sweeper still broadcasts gifts that
 * committed just before the end; the sweeper removes it from the index afterwards.
 */
export const RECENTLY_ENDED_STATUS_PK = 'ENDED_RECENTLY';

/** The sparse index partition of one stream's gifts not yet broadcast (streams.ts, unsentPartitionOf). */
export function unsentStatusPk(streamId: string, partition: number): string {
  return `UNSENT#${streamId}#${partition}`;
}

/**
 * The gift fence: while a stream is live, each of its creator's shard items carries this
 * attribute, and a gift's credit to a shard is conditioned on it. Ending the stream removes it
 * from every shard in the same transaction that marks the stream ended, so a gift sent after the
 * end's 200 cannot commit, although gifts read the stream's state from a short-lived cache. The
 * condition sits on the shard the gift writes anyway: no extra write unit, no single hot key.
 */
export function liveFenceAttribute(streamId: string): string {
  return `live_${streamId}`;
}

/** What one numbering transaction advances the stream's counter by: a chunk of gifts, numbered in order. */
export interface NumberedChunk {
  firstSeq: number;
  lastSeq: number;
  /** The chunk's coins, added to the stream's broadcast total. */
  coins: number;
  /** The frame's time: the broadcaster's window is measured from it. */
  at: Date;
}

/** The sequencer's writes: one chunk's counter, its gifts' numbers and its catch-up log batch. */
const numbering = {
  /**
   * The stream's counter moves past a chunk, with its coins and the frame's time. Only from where
   * this sequencer read it (`onMoved`: another sequencer numbered meanwhile).
   */
  counterAdvanced(store: LedgerStore, streamId: string, chunk: NumberedChunk, onMoved: ConditionFailure): WriteOp {
    return store.update(
      'stream counter',
      keys.stream(streamId),
      {
        expression: 'SET seq = :newSeq, lastFrameAt = :now ADD giftCoins :coins',
        condition: 'seq = :oldSeq',
        values: {
          ':newSeq': chunk.lastSeq,
          ':oldSeq': chunk.firstSeq - 1,
          ':now': chunk.at.getTime(),
          ':coins': chunk.coins,
        },
      },
      onMoved,
    );
  },

  /**
   * A gift record gets its seq and leaves the unsent index. A gift is numbered once
   * (`onNumbered`: it already has a seq).
   */
  giftNumbered(store: LedgerStore, giftKey: ItemKey, seq: number, onNumbered: ConditionFailure): WriteOp {
    return store.update(
      'number gift',
      giftKey,
      {
        expression: 'SET seq = :seq REMOVE statusPk, statusSk',
        condition: 'attribute_not_exists(seq)',
        values: { ':seq': seq },
      },
      onNumbered,
    );
  },

  /**
   * A chunk's events in the catch-up log, as one item keyed by its last seq; written once
   * (`onWritten`: a batch ending there exists).
   */
  eventBatch(
    store: LedgerStore,
    streamId: string,
    batch: { firstSeq: number; lastSeq: number; encodedEvents: string; createdAt: string },
    onWritten: ConditionFailure,
  ): WriteOp {
    return store.put(
      'event batch',
      {
        ...keys.streamEventBatch(streamId, batch.lastSeq),
        streamId,
        firstSeq: batch.firstSeq,
        lastSeq: batch.lastSeq,
        events: batch.encodedEvents,
        createdAt: batch.createdAt,
      },
      { expression: conditions.isNew },
      onWritten,
    );
  },
};

/** The stream item's side of a leaderboard fold: the range it claims, then its completion. */
const leaderboardFolds = {
  /**
   * A fold claims the range (`from`, `to`] on the stream item before it writes a total, so a
   * crash mid-fold resumes the same range. Only when no fold is in progress and the last one
   * ended at `from` (`onChanged`).
   */
  foldClaimed(
    store: LedgerStore,
    streamId: string,
    fold: { from: number; to: number; at: Date },
    onChanged: ConditionFailure,
  ): WriteOp {
    return store.update(
      'claim leaderboard fold',
      keys.stream(streamId),
      {
        expression: 'SET lbFoldTo = :to, lbFoldAt = :now',
        condition: 'attribute_not_exists(lbFoldTo) AND (attribute_not_exists(lbSeq) OR lbSeq = :from)',
        values: { ':to': fold.to, ':now': fold.at.getTime(), ':from': fold.from },
      },
      onChanged,
    );
  },

  /** The claimed fold up to `to` is complete (`onFinishedElsewhere`: it is no longer the claim). */
  foldFinished(store: LedgerStore, streamId: string, to: number, onFinishedElsewhere: ConditionFailure): WriteOp {
    return store.update(
      'finish leaderboard fold',
      keys.stream(streamId),
      { expression: 'SET lbSeq = :to REMOVE lbFoldTo', condition: 'lbFoldTo = :to', values: { ':to': to } },
      onFinishedElsewhere,
    );
  },
};

/** The stream's reads: the status index, the unsent gifts, the catch-up log and the creator's notices. */
const queries = {
  /** One page of the live list, newest first, after the stream `after` (a previous page's last). */
  liveStreamsQuery(limit: number, after?: { streamId: string; startedAt: string }): QueryInput {
    return {
      indexName: 'byStatus',
      keyCondition: 'statusPk = :live',
      values: { ':live': LIVE_STATUS_PK },
      ascending: false,
      limit,
      ...(after && {
        exclusiveStartKey: { ...keys.stream(after.streamId), statusPk: LIVE_STATUS_PK, statusSk: after.startedAt },
      }),
    };
  },

  /** One page of the streams listed under a status partition (the sweeper's), in index order. */
  withStatusQuery(statusPk: string, limit: number, startKey?: PageKey): QueryInput {
    return {
      indexName: 'byStatus',
      keyCondition: 'statusPk = :statusPk',
      values: { ':statusPk': statusPk },
      limit,
      ...(startKey && { exclusiveStartKey: startKey }),
    };
  },

  /** The oldest `limit` gift records of one unsent index partition of the stream. */
  unsentGiftsQuery(streamId: string, partition: number, limit: number): QueryInput {
    return {
      indexName: 'byStatus',
      keyCondition: 'statusPk = :pk',
      values: { ':pk': unsentStatusPk(streamId, partition) },
      ascending: true,
      limit,
    };
  },

  /** One catch-up log partition's first `limit` batches whose last seq is past `afterSeq`. */
  eventBatchesAfterQuery(
    streamId: string,
    partition: number,
    page: { afterSeq: number; limit: number; consistent?: boolean },
  ): QueryInput {
    return {
      keyCondition: 'pk = :pk AND sk > :after',
      values: {
        ':pk': streamEventPartition(streamId, partition),
        ':after': keys.streamEventBatch(streamId, page.afterSeq).sk,
      },
      ascending: true,
      limit: page.limit,
      ...(page.consistent && { consistent: true }),
    };
  },

  /**
   * One notification partition's items (a creator's gift_received entry shard, or its notices),
   * newest first, from `upper` down (BETWEEN includes `upper` itself: the caller drops it).
   */
  notificationsQuery(partitionKey: string, upper: string, limit: number): QueryInput {
    return {
      keyCondition: 'pk = :pk AND sk BETWEEN :lower AND :upper',
      values: { ':pk': partitionKey, ':lower': ENTRY_PREFIX, ':upper': upper },
      ascending: false,
      limit,
    };
  },
};

/**
 * The stream item's named writes and reads: going live, ending, the gift fences on the creator's
 * shards, the broadcaster's numbering (counter, gift records, catch-up log batches) and the
 * bookkeeping of its leaderboard folds. Each carries its key, its condition and the values the
 * condition needs; the use cases compose them into transactions and never see an expression.
 */
export const streamItems = {
  /**
   * Going live: the creator's wallet spreads gift credits over `shards` from now on. Shards only
   * ever grow: a lower count would hide credits on the shards above it (`onRaisedMeanwhile` when
   * another request raised them past `shards`).
   */
  raiseCreatorShards(
    store: LedgerStore,
    creatorId: string,
    shards: number,
    onRaisedMeanwhile: ConditionFailure,
  ): WriteOp {
    return store.update(
      'raise creator shards',
      keys.wallet(creatorId),
      {
        expression: 'SET creatorShards = :shards',
        condition: 'attribute_not_exists(creatorShards) OR creatorShards <= :shards',
        values: { ':shards': shards },
      },
      onRaisedMeanwhile,
    );
  },

  /** A new live stream, listed under LIVE by its start (`onTaken`: the id is already used). */
  wentLive<S extends { streamId: string; startedAt: string }>(
    store: LedgerStore,
    stream: S,
    onTaken: ConditionFailure,
  ): WriteOp {
    return store.put(
      'stream',
      { ...keys.stream(stream.streamId), ...stream, statusPk: LIVE_STATUS_PK, statusSk: stream.startedAt },
      { expression: conditions.isNew },
      onTaken,
    );
  },

  /** The gift fence opens on each of the creator's first `shards` shards while the stream is live. */
  openFences(store: LedgerStore, creatorId: string, streamId: string, shards: number): WriteOp[] {
    return Array.from({ length: shards }, (_, shard) =>
      store.update('open gift fence', keys.walletShard(creatorId, shard), {
        expression: 'SET #live = :true',
        names: { '#live': liveFenceAttribute(streamId) },
        values: { ':true': true },
      }),
    );
  },

  /** The gift fence closes on every shard it opened on: no gift to the stream commits after this. */
  closeFences(store: LedgerStore, creatorId: string, streamId: string, shards: number): WriteOp[] {
    return Array.from({ length: shards }, (_, shard) =>
      store.update('close gift fence', keys.walletShard(creatorId, shard), {
        expression: 'REMOVE #live',
        names: { '#live': liveFenceAttribute(streamId) },
      }),
    );
  },

  /**
   * The stream ends: it leaves the live list for the recently-ended one (the sweeper still looks
   * at it for a while). Only a live stream ends (`onNotLive`: it ended already).
   */
  ended(store: LedgerStore, streamId: string, endedAt: string, onNotLive: ConditionFailure): WriteOp {
    return store.update(
      'end stream',
      keys.stream(streamId),
      {
        expression: 'SET #status = :ended, endedAt = :endedAt, statusPk = :statusPk, statusSk = :endedAt',
        condition: '#status = :live',
        names: { '#status': 'status' },
        values: { ':ended': 'ended', ':live': 'live', ':endedAt': endedAt, ':statusPk': RECENTLY_ENDED_STATUS_PK },
      },
      onNotLive,
    );
  },

  /** `streamEnded` went out: no gift event may follow it. */
  endAnnounced(store: LedgerStore, streamId: string): WriteOp {
    return store.update('stream end announced', keys.stream(streamId), {
      expression: 'SET endAnnounced = :true',
      values: { ':true': true },
    });
  },

  /**
   * An ended stream with nothing left to broadcast leaves the sweeper's list, if it is still on
   * it (`onLeft`: it left meanwhile).
   */
  retired(store: LedgerStore, streamId: string, onLeft: ConditionFailure): WriteOp {
    return store.update(
      'retire ended stream',
      keys.stream(streamId),
      {
        expression: 'REMOVE statusPk, statusSk',
        condition: 'statusPk = :ended',
        values: { ':ended': RECENTLY_ENDED_STATUS_PK },
      },
      onLeft,
    );
  },

  /**
   * The stream's gifts not yet broadcast are spread over more index partitions; the count only
   * grows (`onRaisedMeanwhile`: another run raised it at least as far).
   */
  unsentPartitionsRaised(
    store: LedgerStore,
    streamId: string,
    wanted: number,
    onRaisedMeanwhile: ConditionFailure,
  ): WriteOp {
    return store.update(
      'raise unsent partitions',
      keys.stream(streamId),
      {
        expression: 'SET unsentPartitions = :wanted',
        condition: 'unsentPartitions < :wanted',
        values: { ':wanted': wanted },
      },
      onRaisedMeanwhile,
    );
  },

  ...numbering,
  ...leaderboardFolds,
  ...queries,
};
