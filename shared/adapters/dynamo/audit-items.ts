import type { LedgerStore, QueryInput, WriteOp } from '../../ports/ledger-store';
import { conditions } from './conditions';
import { keys } from './keys';

/** Sort-key prefix of the operators' audit records: `AUDIT#<ISO time>#<id>` sorts them by time. */
export const AUDIT_PREFIX = 'AUDIT#';

/** One operator change as its record is written (shared/usecases/audit.ts). */
export interface AuditRecordItem {
  auditId: string;
  /** The operator's user id (`sub`). */
  operatorId: string;
  /** What was done, e.g. `offer.create`, `offer.end`. */
  action: string;
  /** What it was done to, e.g. `offer:of_...`. */
  target: string;
  at: string;
  /** The change itself: the fields written, as the operator gave them. */
  details: Record<string, unknown>;
}

/** The operators' audit trail: one partition, newest last, of records written once and never changed. */
export const auditItems = {
  /** One operator change's record, written once, in the change's own transaction. */
  record(store: LedgerStore, record: AuditRecordItem): WriteOp {
    return store.put(
      'audit record',
      { ...keys.auditRecord(record.at, record.auditId), ...record },
      { expression: conditions.isNew },
    );
  },
};

/** One page of the trail, newest first, before the record whose sort key is `before` (from the newest without). */
export function auditPageQuery(limit: number, before?: string): QueryInput {
  return {
    keyCondition: before === undefined ? 'pk = :pk AND begins_with(sk, :prefix)' : 'pk = :pk AND sk < :before',
    values: {
      ':pk': keys.auditRecord('', '').pk,
      ...(before === undefined ? { ':prefix': AUDIT_PREFIX } : { ':before': before }),
    },
    ascending: false,
    limit,
    consistent: true,
  };
}
