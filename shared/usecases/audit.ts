import * as z from 'zod';
import { AUDIT_PREFIX, type AuditRecordItem, auditItems, auditPageQuery } from '../adapters/dynamo/audit-items';
import type { Item, LedgerStore, WriteOp } from '../ports/ledger-store';
import { InvariantViolation } from '../domain/errors';
import type { Caller } from '../domain/identity';

/**
 * The operators' audit trail: every change an operator makes writes one record (who, when, what)
 * in the same DynamoDB transaction as the change itself, so there is no change without its record
 * and no record of a change that did not happen. Records are immutable. Operator changes are
 * rare, so the trail is one partition (`AUDIT`), read newest first.
 */

export { AUDIT_PREFIX };

/** One operator change: the record as the audit item module writes it. */
export type AuditRecord = AuditRecordItem;

const auditItem = z.object({
  auditId: z.string().min(1),
  operatorId: z.string().min(1),
  action: z.string().min(1),
  target: z.string().min(1),
  at: z.string().min(1),
  details: z.record(z.string(), z.unknown()),
});

/**
 * The op that records one operator change; put it in the change's own transaction. */
export function auditOp(
  store: LedgerStore,
  operator: Caller,
  change: { action: string; target: string; details: Record<string, unknown> },
  at: Date,
  newId: (prefix: string, now: Date) => string,
): WriteOp {
  const record: AuditRecord = {
    auditId: newId('aud', at),
    operatorId: operator.userId,
    action: change.action,
    target: change.target,
    at: at.toISOString(),
    details: change.details,
  };
  return auditItems.record(store, record);
}

export function encodeAuditCursor(sortKey: string): string {
  return Buffer.from(sortKey, 'utf8').toString('base64url');
}

export function decodeAuditCursor(cursor: string): string | undefined {
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  return decoded.startsWith(AUDIT_PREFIX) ? decoded : undefined;
}

/** GET /v1/operator/audit: the trail, newest first. */
export async function listAudit(
  store: LedgerStore,
  page: { limit: number; cursor?: string | undefined },
): Promise<{ items: AuditRecord[]; nextCursor: string | null }> {
  const before = page.cursor === undefined ? undefined : decodeAuditCursor(page.cursor);
  const result = await store.query(auditPageQuery(page.limit, before));
  const items = result.items.map(parseAudit);
  const last = result.items[result.items.length - 1];
  const nextCursor = result.lastEvaluatedKey && last ? encodeAuditCursor(String(last.sk)) : null;
  return { items, nextCursor };
}

function parseAudit(item: Item): AuditRecord {
  const parsed = auditItem.safeParse(item);
  if (!parsed.success) throw new InvariantViolation(`audit record ${String(item.sk)} is malformed`);
  return parsed.data;
}
