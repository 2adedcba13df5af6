import type { ConditionFailure, LedgerStore, QueryInput, WriteOp } from '../../ports/ledger-store';
import { keys } from './keys';

/** A leaderboard shard's GSI partition: the leaderboard items' own partition key. */
export function leaderboardPartition(streamId: string, shard: number): string {
  return keys.leaderboardEntry(streamId, shard, '').pk;
}

/**
 * A stream's leaderboard: one item per gifter with their total, on one of the stream's shards
 * (picked from the gifter's id), indexed by coins. Totals are folded in from the catch-up log,
 * never written per gift.
 */
export const leaderboardItems = {
  /**
   * A gifter's coins over a fold's range, added to their total, which then carries the fold's
   * last seq `to`. A total that already holds the range is left alone (`onAlreadyFolded`), so a
   * fold resumed after a crash counts no gift twice.
   */
  senderFolded(
    store: LedgerStore,
    target: { streamId: string; shard: number; userId: string },
    fold: { coins: number; to: number },
    onAlreadyFolded: ConditionFailure,
  ): WriteOp {
    return store.update(
      'leaderboard',
      keys.leaderboardEntry(target.streamId, target.shard, target.userId),
      {
        expression: 'SET lbPk = :lbPk, userId = :userId, lbSeq = :to ADD lbCoins :coins',
        condition: 'attribute_not_exists(lbSeq) OR lbSeq < :to',
        values: {
          ':lbPk': leaderboardPartition(target.streamId, target.shard),
          ':userId': target.userId,
          ':coins': fold.coins,
          ':to': fold.to,
        },
      },
      onAlreadyFolded,
    );
  },

  /** The `limit` biggest totals of one leaderboard shard, biggest first. */
  topQuery(streamId: string, shard: number, limit: number): QueryInput {
    return {
      indexName: 'leaderboard',
      keyCondition: 'lbPk = :lbPk',
      values: { ':lbPk': leaderboardPartition(streamId, shard) },
      ascending: false,
      limit,
    };
  },
};
