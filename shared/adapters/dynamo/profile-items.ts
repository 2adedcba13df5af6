import type { ConditionFailure, ItemKey, LedgerStore, WriteOp } from '../../ports/ledger-store';
import { conditions } from './conditions';

/** A creator's public profile: an item of its own, beside the creator's wallet. */
export function profileKey(creatorId: string): ItemKey {
  return { pk: `PROFILE#${creatorId}`, sk: 'PROFILE' };
}

/**
 * The profile item's named writes. The two the broadcaster and going live make have no
 * condition, so they never fail the transaction they ride in; a creator who went live before
 * profiles existed gets one, dated from that stream.
 */
export const profileItems = {
  /** Going live: one more stream, and the first stream's start is kept. */
  wentLive(store: LedgerStore, creatorId: string, startedAt: string): WriteOp {
    return store.update('creator profile: went live', profileKey(creatorId), {
      expression: 'SET creatorId = :id, streamingSince = if_not_exists(streamingSince, :at) ADD streams :one',
      values: { ':id': creatorId, ':at': startedAt, ':one': 1 },
    });
  },

  /** The coins of one broadcast window's gifts, folded in with their numbering. */
  giftsFolded(store: LedgerStore, stream: { creatorId: string; startedAt: string }, coins: number): WriteOp {
    return store.update('creator profile: gifts', profileKey(stream.creatorId), {
      expression:
        'SET creatorId = :id, streamingSince = if_not_exists(streamingSince, :since) ADD giftCoinsReceived :coins, streams :none',
      values: { ':id': stream.creatorId, ':since': stream.startedAt, ':coins': coins, ':none': 0 },
    });
  },

  /** The creator's display name, on a profile that exists (`onMissing`). */
  named(store: LedgerStore, creatorId: string, displayName: string, onMissing: ConditionFailure): WriteOp {
    return setOnExisting(store, 'creator profile: name', creatorId, ['displayName', displayName], onMissing);
  },

  /** The verified badge, granted or withdrawn by an operator, on a profile that exists (`onMissing`). */
  verified(store: LedgerStore, creatorId: string, verified: boolean, onMissing: ConditionFailure): WriteOp {
    return setOnExisting(store, 'creator profile: verified', creatorId, ['verified', verified], onMissing);
  },
};

/** Sets one attribute on a profile that exists: never a half profile without its stream facts. */
function setOnExisting(
  store: LedgerStore,
  label: string,
  creatorId: string,
  [name, value]: ['displayName', string] | ['verified', boolean],
  onMissing: ConditionFailure,
): WriteOp {
  return store.update(
    label,
    profileKey(creatorId),
    { expression: `SET ${name} = :value`, condition: conditions.exists, values: { ':value': value } },
    onMissing,
  );
}
