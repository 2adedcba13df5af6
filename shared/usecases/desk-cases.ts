import * as z from 'zod';
import {
  caseItems,
  OPEN_CASES_STATUS_PK,
  openCasesQuery,
  partitionBetweenQuery,
  rechargeEntriesQuery,
} from '../adapters/dynamo/case-items';
import { ENTRY_PREFIX, ENTRY_PREFIX_END, keys, type ItemKey } from '../adapters/dynamo/keys';
import type { Item, LedgerStore, WriteOp } from '../ports/ledger-store';
import { entryFromItem } from '../adapters/dynamo/items';
import { derivedIdHex } from '../domain/derived-id';
import { InvariantViolation, NotFoundError } from '../domain/errors';
import { isCredited, parseRecharge, type RechargeRecord } from './recharge';
import { transactionView, type TransactionView } from './wallet';

/**
 * The support desk's cases: a user's report of a transaction, or a wallet that a
 * dispute or a refund locked. A case is one item (`CASE#<id>`), written in the same transaction
 * as what opens it (the report, the clawback that locks), so there is no report without its case.
 *
 * Open cases are listed through the ledger's sparse `byStatus` index under one partition key,
 * OPEN_CASES_STATUS_PK, sorted by creation time: oldest first is one Query. One key is safe here:
 * cases open at the rate of reports and disputes (a few a minute, even at scale) and each writes
 * the index twice (open, then close), far below the ~1,000 writes/s a GSI partition takes; a GSI
 * has no 10 GB item-collection limit (that limit is for local indexes only), and the index is
 * sparse (resolving removes statusPk), so it holds only open cases and every read is a page.
 */

export { OPEN_CASES_STATUS_PK };
/** Entries shown on each side of the case's transaction: enough context, one small query each. */
export const CASE_LEDGER_WINDOW = 10;
/** The wallet's newest entries searched for its recharges (the refund choices): one query page. */
export const CASE_RECHARGE_SCAN = 100;

export const CASE_KINDS = ['report', 'wallet_locked'] as const;
export const CASE_STATUSES = ['open', 'resolved'] as const;
export const LOCK_DECISIONS = ['keep', 'lift'] as const;

const itemKey = z.object({ pk: z.string().min(1), sk: z.string().min(1) });

export const resolutionRecord = z.object({
  operatorId: z.string().min(1),
  resolvedAt: z.string().min(1),
  lock: z.enum(LOCK_DECISIONS),
  note: z.string(),
  reason: z.string(),
  refunds: z.array(z.object({ rechargeId: z.string().min(1), paymentIntentId: z.string().min(1) })),
});
export type Resolution = z.infer<typeof resolutionRecord>;

/** What the reporter is told: whether the lock was lifted, and which recharges were refunded. */
export const reportOutcomeSchema = z.object({
  lock: z.enum(['kept', 'lifted']),
  refundedRechargeIds: z.array(z.string()),
});

const caseRecord = z.object({
  caseId: z.string().min(1),
  kind: z.enum(CASE_KINDS),
  userId: z.string().min(1),
  status: z.enum(CASE_STATUSES),
  createdAt: z.string().min(1),
  /** Reports: the report, the reported entry and where it is stored, and the user's words. */
  reportId: z.string().optional(),
  transactionId: z.string().optional(),
  transactionKey: itemKey.optional(),
  reportReason: z.string().optional(),
  /** Locks: the recharge whose dispute or refund locked the wallet, and Stripe's ids for it. */
  rechargeId: z.string().optional(),
  source: z.record(z.string(), z.string()).optional(),
  resolution: resolutionRecord.optional(),
});
export type DeskCase = z.infer<typeof caseRecord>;

export function parseCase(item: Item): DeskCase {
  const parsed = caseRecord.safeParse(item);
  if (!parsed.success) throw new InvariantViolation(`case ${String(item.pk)} is malformed: ${parsed.error.message}`);
  return parsed.data;
}

/** The case a locking dispute or refund opens; its id is derived from the event, so it is opened once. */
export function lockCaseOp(
  store: LedgerStore,
  recharge: Pick<RechargeRecord, 'rechargeId' | 'userId'>,
  seed: string,
  source: Record<string, string>,
  at: Date,
): WriteOp {
  const deskCase: DeskCase = {
    caseId: `case_${derivedIdHex('wallet_locked', seed).slice(0, 26)}`,
    kind: 'wallet_locked',
    userId: recharge.userId,
    status: 'open',
    createdAt: at.toISOString(),
    rechargeId: recharge.rechargeId,
    source,
  };
  return caseItems.open(store, deskCase);
}

/** The case a report opens: the report's id names it. */
export function reportCaseOp(
  store: LedgerStore,
  report: { reportId: string; userId: string; transactionId: string; transactionKey: ItemKey; reason: string },
  at: Date,
): WriteOp {
  const deskCase: DeskCase = {
    caseId: report.reportId,
    kind: 'report',
    userId: report.userId,
    status: 'open',
    createdAt: at.toISOString(),
    reportId: report.reportId,
    transactionId: report.transactionId,
    transactionKey: report.transactionKey,
    reportReason: report.reason,
  };
  return caseItems.open(store, deskCase);
}

export function encodeCaseCursor(statusSk: string): string {
  return Buffer.from(statusSk, 'utf8').toString('base64url');
}

/** A cursor this API gave out: the last listed case's `<createdAt>#<caseId>`. */
export function decodeCaseCursor(cursor: string): string | undefined {
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  return /^\d{4}-\d{2}-\d{2}T[\d:.]+Z#[A-Za-z0-9_]+$/.test(decoded) ? decoded : undefined;
}

/** GET /v1/operator/cases: open cases, oldest first, one index page. */
export async function listOpenCases(
  store: LedgerStore,
  page: { limit: number; cursor?: string | undefined },
): Promise<{ items: DeskCase[]; nextCursor: string | null }> {
  const after = page.cursor === undefined ? undefined : decodeCaseCursor(page.cursor);
  const result = await store.query(openCasesQuery(page.limit, after));
  const items = result.items.map(parseCase);
  const last = result.items[result.items.length - 1];
  return { items, nextCursor: result.lastEvaluatedKey && last ? encodeCaseCursor(String(last.statusSk)) : null };
}

export async function readCase(store: LedgerStore, caseId: string): Promise<DeskCase> {
  const item = await store.getItem(keys.deskCase(caseId), { consistent: true });
  if (!item) throw new NotFoundError('No such case.');
  return parseCase(item);
}

export interface RechargeChoice {
  rechargeId: string;
  paymentIntentId: string;
  packageId: string;
  coins: number;
  bonusCoins: number;
  price: { amount: number; currency: string };
  status: RechargeRecord['status'];
  refundedMinor: number;
  createdAt: string;
  /** Whether the desk may refund it now: credited, not refunded in full, no open dispute, no desk refund yet. */
  refundable: boolean;
}

/** Stripe refuses to refund a disputed charge; and a recharge is refunded by the desk at most once. */
export function isRefundable(recharge: RechargeRecord): boolean {
  const openDispute = Object.keys(recharge.disputes).some((disputeId) => !recharge.wonDisputes[disputeId]);
  return (
    isCredited(recharge) &&
    recharge.refundedMinor < recharge.priceMinor &&
    !openDispute &&
    recharge.deskRefund === undefined
  );
}

function rechargeChoice(recharge: RechargeRecord): RechargeChoice {
  return {
    rechargeId: recharge.rechargeId,
    paymentIntentId: recharge.paymentIntentId,
    packageId: recharge.packageId,
    coins: recharge.coins,
    bonusCoins: recharge.bonusCoins,
    price: { amount: recharge.priceMinor, currency: recharge.currency },
    status: recharge.status,
    refundedMinor: recharge.refundedMinor,
    createdAt: recharge.createdAt,
    refundable: isRefundable(recharge),
  };
}

export interface CaseDetail {
  case: DeskCase;
  wallet: { userId: string; coins: number; owedCoins: number; locked: boolean; lockReason: string | null };
  transaction: TransactionView | null;
  ledger: { before: TransactionView[]; after: TransactionView[] };
  recharges: RechargeChoice[];
}

/** GET /v1/operator/cases/{caseId}: the case, its wallet, its transaction and the ledger around it. */
export async function getCaseDetail(store: LedgerStore, caseId: string): Promise<CaseDetail> {
  const deskCase = await readCase(store, caseId);
  const walletKey = keys.wallet(deskCase.userId);
  const [walletItem, transactionItem, recharges] = await Promise.all([
    store.getItem(walletKey, { consistent: true }),
    deskCase.transactionKey ? store.getItem(deskCase.transactionKey, { consistent: true }) : undefined,
    walletRecharges(store, deskCase.userId),
  ]);
  // The window is centred on the reported entry, or for a lock on the moment the case opened.
  const anchor = deskCase.transactionKey ?? { pk: walletKey.pk, sk: `${ENTRY_PREFIX}${deskCase.createdAt}` };
  const ledger = await ledgerAround(store, anchor);
  return {
    case: deskCase,
    wallet: {
      userId: deskCase.userId,
      coins: typeof walletItem?.coins === 'number' ? walletItem.coins : 0,
      owedCoins: typeof walletItem?.owedCoins === 'number' ? walletItem.owedCoins : 0,
      locked: walletItem?.locked === true,
      lockReason: typeof walletItem?.lockReason === 'string' ? walletItem.lockReason : null,
    },
    transaction: transactionItem ? transactionView(entryFromItem(transactionItem)) : null,
    ledger,
    recharges,
  };
}

/** CASE_LEDGER_WINDOW entries on each side of the anchor (the anchor itself excluded), oldest first. */
async function ledgerAround(
  store: LedgerStore,
  anchor: ItemKey,
): Promise<{ before: TransactionView[]; after: TransactionView[] }> {
  const side = (lower: string, upper: string, ascending: boolean) =>
    // The range includes the anchor: one more, dropped below.
    store.query(partitionBetweenQuery(anchor, { lower, upper, ascending }, CASE_LEDGER_WINDOW + 1));
  const [before, after] = await Promise.all([
    side(ENTRY_PREFIX, anchor.sk, false),
    side(anchor.sk, ENTRY_PREFIX_END, true),
  ]);
  const views = (items: Item[]) =>
    items
      .filter((item) => item.sk !== anchor.sk)
      .slice(0, CASE_LEDGER_WINDOW)
      .map((item) => transactionView(entryFromItem(item)));
  return { before: views(before.items).reverse(), after: views(after.items) };
}

/** The recharges among the wallet's newest CASE_RECHARGE_SCAN entries: what the operator may refund. */
async function walletRecharges(store: LedgerStore, userId: string): Promise<RechargeChoice[]> {
  const page = await store.query(rechargeEntriesQuery(userId, CASE_RECHARGE_SCAN));
  const ids = new Set<string>();
  for (const item of page.items) {
    const ref = item.ref as Record<string, unknown> | undefined;
    if (typeof ref?.rechargeId === 'string') ids.add(ref.rechargeId);
  }
  if (ids.size === 0) return [];
  const items = await store.batchGet(
    [...ids].map((id) => keys.recharge(id)),
    { consistent: true },
  );
  return items
    .map(parseRecharge)
    .filter((recharge) => recharge.userId === userId)
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1))
    .map(rechargeChoice);
}
