import type { ConditionFailure, Item, ItemKey, LedgerStore, QueryInput, WriteOp } from '../../ports/ledger-store';
import { conditions } from './conditions';
import { ENTRY_PREFIX, keys } from './keys';

/**
 * The support desk's items: cases, the user's transaction reports they open, and what resolving
 * one writes for the reporter. The use cases (shared/usecases/desk-cases.ts, desk.ts) compose
 * these ops and queries and never see an expression.
 */

/** The byStatus index partition every open case is listed under (see desk-cases.ts on why one key is safe). */
export const OPEN_CASES_STATUS_PK = 'CASES_OPEN';

/** A case as it is opened: its id and creation time place it in the open-cases index. */
export type OpenedCase = { caseId: string; createdAt: string } & Item;

/** A user's report of one of their transactions, as it is filed. */
export type FiledReport = { reportId: string; userId: string } & Item;

export const caseItems = {
  /**
   * Opens a case, written once (a lock case's id is derived from its event, a report's case from
   * the report): listed in the sparse open-cases index, oldest first.
   */
  open(store: LedgerStore, deskCase: OpenedCase): WriteOp {
    return store.put(
      'desk case',
      {
        ...keys.deskCase(deskCase.caseId),
        ...deskCase,
        statusPk: OPEN_CASES_STATUS_PK,
        statusSk: `${deskCase.createdAt}#${deskCase.caseId}`,
      },
      { expression: conditions.isNew },
    );
  },

  /**
   * Closes an open case with its resolution (`onNotOpen` if it is not open any more). Leaving the
   * open-cases index is removing statusPk: the index is sparse.
   */
  close(store: LedgerStore, caseId: string, resolution: Item, onNotOpen: ConditionFailure): WriteOp {
    return store.update(
      'desk case close',
      keys.deskCase(caseId),
      {
        expression: 'SET #status = :resolved, resolution = :resolution REMOVE statusPk, statusSk',
        condition: '#status = :open',
        names: { '#status': 'status' },
        values: { ':resolved': 'resolved', ':open': 'open', ':resolution': resolution },
      },
      onNotOpen,
    );
  },

  /** A user's report of a transaction, filed (its case is opened in the same transaction). */
  fileReport(store: LedgerStore, report: FiledReport): WriteOp {
    return store.put('transaction report', { ...keys.transactionReport(report.userId, report.reportId), ...report });
  },

  /** The report's outcome, on the report that exists (`onMissing`): what its owner reads back. */
  reportResolved(
    store: LedgerStore,
    report: { userId: string; reportId: string },
    resolved: { outcome: Item; at: string },
    onMissing: ConditionFailure,
  ): WriteOp {
    return store.update(
      'report resolved',
      keys.transactionReport(report.userId, report.reportId),
      {
        expression: 'SET #status = :resolved, outcome = :outcome, resolvedAt = :at',
        condition: conditions.exists,
        names: { '#status': 'status' },
        values: { ':resolved': 'resolved', ':outcome': resolved.outcome, ':at': resolved.at },
      },
      onMissing,
    );
  },

  /** The reporter's `report_resolved` notification, on their notification partition, written once. */
  reportResolvedNotification(
    store: LedgerStore,
    notification: { notificationId: string; userId: string; reportId: string; outcome: Item; createdAt: string },
  ): WriteOp {
    return store.put(
      'report_resolved notification',
      {
        ...keys.notification(notification.userId, notification.createdAt, notification.notificationId),
        notificationId: notification.notificationId,
        notificationType: 'report_resolved',
        userId: notification.userId,
        reportId: notification.reportId,
        outcome: notification.outcome,
        createdAt: notification.createdAt,
      },
      { expression: conditions.isNew },
    );
  },
};

/** One page of open cases, oldest first, after the case whose index sort key is `after`. */
export function openCasesQuery(limit: number, after?: string): QueryInput {
  return {
    indexName: 'byStatus',
    keyCondition: after === undefined ? 'statusPk = :pk' : 'statusPk = :pk AND statusSk > :after',
    values: { ':pk': OPEN_CASES_STATUS_PK, ...(after !== undefined && { ':after': after }) },
    ascending: true,
    limit,
  };
}

/** Up to `limit` items of the anchor's partition between two sort keys (both included), read consistently. */
export function partitionBetweenQuery(
  anchor: ItemKey,
  range: { lower: string; upper: string; ascending: boolean },
  limit: number,
): QueryInput {
  return {
    keyCondition: 'pk = :pk AND sk BETWEEN :lower AND :upper',
    values: { ':pk': anchor.pk, ':lower': range.lower, ':upper': range.upper },
    ascending: range.ascending,
    limit,
    consistent: true,
  };
}

/** The recharge entries among a wallet's newest `limit` entries, newest first, read consistently. */
export function rechargeEntriesQuery(userId: string, limit: number): QueryInput {
  return {
    keyCondition: 'pk = :pk AND begins_with(sk, :prefix)',
    filter: 'entryType = :recharge',
    values: { ':pk': keys.wallet(userId).pk, ':prefix': ENTRY_PREFIX, ':recharge': 'recharge' },
    ascending: false,
    limit,
    consistent: true,
  };
}
