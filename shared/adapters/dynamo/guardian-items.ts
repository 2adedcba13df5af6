import type { ConditionFailure, Item, ItemKey, LedgerStore, QueryInput, WriteOp } from '../../ports/ledger-store';
import { keys } from './keys';

/**
 * Parental permission's items beside the wallet (whose consent attributes wallet-items.ts
 * writes): a teenager's invitation to a guardian, the consent records that form the audit trail
 * of every decision, and the guardian's link to their ward.
 */

/** The byStatus index partition of the invites waiting for one guardian. */
const pendingInvitesPk = (guardianId: string) => `GUARDIAN#${guardianId}`;

/** An invitation as it is sent: waiting for the guardian's decision. */
export interface SentInvite {
  inviteId: string;
  teenId: string;
  guardianId: string;
  teenCountry: string | null;
  createdAt: string;
}

/** One decision about a teenager's consent, as the trail records it. */
export type ConsentDecision = {
  action: 'granted' | 'declined' | 'revoked' | 'budget_set';
  guardianId: string;
} & Item;

export const guardianItems = {
  inviteKey(inviteId: string): ItemKey {
    return keys.guardianInvite(inviteId);
  },

  /**
   * The invite as waiting, listed in the guardian's pending invites. It replaces a decided invite
   * (a teenager may ask again); one still waiting is left as it is (`onWaiting`).
   */
  send(store: LedgerStore, invite: SentInvite, onWaiting: ConditionFailure): WriteOp {
    return store.put(
      'guardian invite',
      sentInviteItem(invite),
      {
        expression: 'attribute_not_exists(pk) OR #status <> :pending',
        names: { '#status': 'status' },
        values: { ':pending': 'pending' },
      },
      onWaiting,
    );
  },

  /**
   * The guardian's decision on an invite still waiting (`onDecided` if it was decided meanwhile):
   * it leaves the pending invites.
   */
  decide(
    store: LedgerStore,
    inviteId: string,
    decision: { status: 'approved' | 'declined'; at: string },
    onDecided: ConditionFailure,
  ): WriteOp {
    return store.update(
      'invite decision',
      keys.guardianInvite(inviteId),
      {
        expression: 'SET #status = :status, decidedAt = :at REMOVE statusPk, statusSk',
        condition: '#status = :pending',
        names: { '#status': 'status' },
        values: { ':status': decision.status, ':at': decision.at, ':pending': 'pending' },
      },
      onDecided,
    );
  },

  /** One decision about the teenager's consent, in the trail beside their wallet. */
  consentRecord(
    store: LedgerStore,
    teenId: string,
    recorded: { at: string; recordId: string },
    decision: ConsentDecision,
  ): WriteOp {
    const { at, recordId } = recorded;
    return store.put('consent record', {
      ...keys.consentRecord(teenId, at, recordId),
      recordId,
      teenId,
      at,
      ...decision,
    });
  },

  /** The guardian's link to the teenager whose consent they gave. */
  wardLink(store: LedgerStore, guardianId: string, teenId: string, since: string): WriteOp {
    return store.put('ward link', { ...keys.ward(guardianId, teenId), teenId, since });
  },
};

/** The invite item as sent, with its place in the guardian's pending invites (sorted by time, then id). */
export function sentInviteItem(invite: SentInvite): Item {
  return {
    ...keys.guardianInvite(invite.inviteId),
    inviteId: invite.inviteId,
    teenId: invite.teenId,
    guardianId: invite.guardianId,
    teenCountry: invite.teenCountry,
    status: 'pending',
    createdAt: invite.createdAt,
    decidedAt: null,
    statusPk: pendingInvitesPk(invite.guardianId),
    statusSk: `${invite.createdAt}#${invite.inviteId}`,
  };
}

/** The invites waiting for one guardian, oldest first (decided ones have left the index). */
export function pendingInvitesQuery(guardianId: string, limit: number): QueryInput {
  return {
    indexName: 'byStatus',
    keyCondition: 'statusPk = :pk',
    values: { ':pk': pendingInvitesPk(guardianId) },
    ascending: true,
    limit,
  };
}
