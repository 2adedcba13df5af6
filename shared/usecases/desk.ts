import * as z from 'zod';
import { caseItems } from '../adapters/dynamo/case-items';
import { keys } from '../adapters/dynamo/keys';
import { walletItems } from '../adapters/dynamo/wallet-items';
import type { LedgerStore, WriteOp } from '../ports/ledger-store';
import type { Payments } from '../adapters/payments';
import { ConflictError, InvariantViolation, NotFoundError, ValidationError } from '../domain/errors';
import type { Caller } from '../domain/identity';
import { auditOp } from './audit';
import { type DeskCase, isRefundable, readCase, reportOutcomeSchema, type Resolution } from './desk-cases';
import {
  AlreadyDone,
  findStoredAnswer,
  type IdempotentRequest,
  recordAnswerOp,
  type StoredAnswer,
} from './idempotency';
import {
  ConcurrentChange,
  MAX_RECHARGE_WRITE_ATTEMPTS,
  pendingStatusPk,
  readRecharge,
  rechargeTransitionOp,
} from './recharge';
import { applyClaim } from './stripe-webhook';

/**
 * Resolving a support-desk case: refund chosen recharges of the case's wallet through
 * Stripe, keep or lift the wallet's lock, add a note; and tell the reporter.
 *
 * Closing is one transaction: the case closed with its resolution, the operator's audit record,
 * the lock decision, the report's outcome and the reporter's notification, each refunded
 * recharge marked as the desk's (`deskRefund`), and the request's idempotency record. Only then
 * is Stripe asked to refund, and only then are the coins taken back (as the contract's refunds
 * are: as far as the balance allows, the rest into owedCoins). That last step is the same
 * `applyClaim` the `charge.refunded` webhook runs, guarded by the recharge's cumulative
 * `refundedMinor` and its version: whichever of the two comes first takes the coins, the other
 * finds nothing left to take. Since the recharge says `deskRefund`, neither locks the wallet.
 *
 * A crash after the close and before Stripe (or before the coins are taken) is finished by the
 * same request again: its Idempotency-Key finds the stored answer, and the refunds still to do
 * are done before it is replayed; if it never comes, the recharges' expiry sweep finishes them a
 * day later (the close puts each refunded recharge in its index). Stripe's own idempotency key (one per recharge) makes the
 * second call the same refund. Coins only ever leave the case's wallet: nothing is moved to
 * anyone else.
 */

export const IDEMPOTENCY_SCOPE_DESK_RESOLVE = 'desk-resolve';
/**
 * Recharges one resolution may refund. Each is one op in the closing transaction, next to at most
 * six others (case, audit, wallet, report, notification, idempotency record), well inside
 * DynamoDB's 100 items per TransactWriteItems (MAX_TRANSACTION_ITEMS).
 */
export const MAX_DESK_REFUNDS = 20;
export const MAX_DESK_NOTE_LENGTH = 2000;
export const MAX_DESK_REASON_LENGTH = 500;

export interface ResolveInput {
  refunds: { rechargeId: string }[];
  lock: 'keep' | 'lift';
  note: string;
  reason: string;
}

export type ReportOutcome = z.infer<typeof reportOutcomeSchema>;

export interface ResolutionView {
  caseId: string;
  status: 'resolved';
  resolution: Resolution;
}

export interface DeskDeps {
  store: LedgerStore;
  payments: Pick<Payments, 'refundPayment'>;
  now: () => Date;
  newId: (prefix: string, now: Date) => string;
}

/** What finishing a case's refunds needs: it writes no new item, so no ids. */
export type DeskRefundDeps = Pick<DeskDeps, 'store' | 'payments' | 'now' | 'newId'>;

/** Stripe's idempotency key for the desk's refund of one recharge: one refund, however often asked. */
export function deskRefundKey(rechargeId: string): string {
  return `desk-refund-${rechargeId}`;
}

/** POST /v1/operator/cases/{caseId}/resolve. */
export async function resolveCase(
  deps: DeskDeps,
  operator: Caller,
  caseId: string,
  input: ResolveInput,
  idempotency: { key: string; fingerprint: string },
): Promise<StoredAnswer<ResolutionView>> {
  const request: IdempotentRequest = { userId: operator.userId, scope: IDEMPOTENCY_SCOPE_DESK_RESOLVE, ...idempotency };
  const stored = await findStoredAnswer<ResolutionView>(deps.store, request, deps.now());
  if (stored) {
    await completeDeskRefunds(deps, caseId);
    return stored;
  }
  let answer: StoredAnswer<ResolutionView>;
  try {
    answer = await closeCase(deps, operator, caseId, input, request);
  } catch (error) {
    if (!(error instanceof AlreadyDone)) throw error;
    answer = error.answer as StoredAnswer<ResolutionView>;
  }
  await completeDeskRefunds(deps, caseId);
  return answer;
}

/** The recharges to refund, read and checked: the case's wallet's own, each refundable now. */
async function refundsToMake(store: LedgerStore, deskCase: DeskCase, input: ResolveInput) {
  const recharges = await Promise.all(input.refunds.map((refund) => readRecharge(store, refund.rechargeId)));
  return recharges.map((recharge, index) => {
    // Another wallet's recharge is refused exactly like one that does not exist: no one learns what is whose.
    if (!recharge || recharge.userId !== deskCase.userId) {
      throw new ValidationError("A refund names a recharge that is not one of this case's wallet.", {
        details: [{ path: `body.refunds.${index}.rechargeId`, message: "not a recharge of the case's wallet" }],
      });
    }
    if (!isRefundable(recharge))
      throw new ConflictError(
        `Recharge ${recharge.rechargeId} cannot be refunded: it is not credited, already refunded, or disputed.`,
      );
    return recharge;
  });
}

async function closeCase(
  deps: DeskDeps,
  operator: Caller,
  caseId: string,
  input: ResolveInput,
  request: IdempotentRequest,
): Promise<StoredAnswer<ResolutionView>> {
  for (let attempt = 0; attempt < MAX_RECHARGE_WRITE_ATTEMPTS; attempt += 1) {
    const deskCase = await readCase(deps.store, caseId);
    if (deskCase.status !== 'open') throw new ConflictError('This case is already resolved.');
    const recharges = await refundsToMake(deps.store, deskCase, input);
    const now = deps.now();
    const resolution: Resolution = {
      operatorId: operator.userId,
      resolvedAt: now.toISOString(),
      lock: input.lock,
      note: input.note,
      reason: input.reason,
      refunds: recharges.map((recharge) => ({
        rechargeId: recharge.rechargeId,
        paymentIntentId: recharge.paymentIntentId,
      })),
    };
    const answer: StoredAnswer<ResolutionView> = { status: 200, body: { caseId, status: 'resolved', resolution } };
    const deskRefund = { caseId, requestedAt: resolution.resolvedAt };
    const ops: WriteOp[] = [
      // First: a concurrent twin of this request that got there first surfaces as its answer, not as a conflict.
      recordAnswerOp(deps.store, request, answer, now),
      caseItems.close(deps.store, caseId, resolution, () => new ConcurrentChange('case')),
      auditOp(
        deps.store,
        operator,
        {
          action: 'case.resolve',
          target: `case:${caseId}`,
          details: { userId: deskCase.userId, ...resolution },
        },
        now,
        deps.newId,
      ),
      // Into the recharges' expiry index too: if no one sends this request again after a crash,
      // the sweep finishes the refund; applying it takes the recharge out again.
      ...recharges.map((recharge) =>
        rechargeTransitionOp(deps.store, recharge, {
          deskRefund,
          statusPk: pendingStatusPk(recharge.rechargeId),
          statusSk: `${resolution.resolvedAt}#${recharge.rechargeId}`,
        }),
      ),
      ...(input.lock === 'lift' ? [unlockOp(deps.store, deskCase.userId)] : []),
      ...reporterOps(deps, deskCase, resolution, now),
    ];
    try {
      await deps.store.transactWrite(ops);
      return answer;
    } catch (error) {
      if (error instanceof ConcurrentChange) continue;
      throw error;
    }
  }
  throw new ConflictError('The case kept changing while it was being resolved; try again.');
}

/** Lifts any lock, a dispute's included: only an operator's resolution does this. */
function unlockOp(store: LedgerStore, userId: string): WriteOp {
  // A case always has a wallet.
  return walletItems.unlockByOperator(
    store,
    userId,
    () => new InvariantViolation(`the wallet of ${userId} has a case but no wallet item`),
  );
}

export function reportOutcome(resolution: Resolution): ReportOutcome {
  return {
    lock: resolution.lock === 'lift' ? 'lifted' : 'kept',
    refundedRechargeIds: resolution.refunds.map((refund) => refund.rechargeId),
  };
}

/** A report's outcome on the report, and the reporter's `report_resolved` notification. */
function reporterOps(
  { store, newId }: Pick<DeskDeps, 'store' | 'newId'>,
  deskCase: DeskCase,
  resolution: Resolution,
  at: Date,
): WriteOp[] {
  if (deskCase.kind !== 'report' || deskCase.reportId === undefined) return [];
  const outcome = reportOutcome(resolution);
  const notificationId = newId('ntf', at);
  const report = { userId: deskCase.userId, reportId: deskCase.reportId };
  return [
    caseItems.reportResolved(
      store,
      report,
      { outcome, at: resolution.resolvedAt },
      () => new InvariantViolation(`case ${deskCase.caseId} names report ${deskCase.reportId}, which does not exist`),
    ),
    caseItems.reportResolvedNotification(store, {
      notificationId,
      ...report,
      outcome,
      createdAt: resolution.resolvedAt,
    }),
  ];
}

/**
 * The refunds a resolved case still owes: Stripe asked (idempotent per recharge), then the coins
 * taken back unless `charge.refunded` already took them. Runs after every resolve, first or
 * replayed; a recharge refunded in full is already done and costs no call.
 */
export async function completeDeskRefunds(deps: DeskRefundDeps, caseId: string): Promise<void> {
  const deskCase = await readCase(deps.store, caseId);
  for (const refund of deskCase.resolution?.refunds ?? []) {
    const recharge = await readRecharge(deps.store, refund.rechargeId);
    if (!recharge) throw new InvariantViolation(`case ${caseId} refunds recharge ${refund.rechargeId}, which is gone`);
    if (recharge.refundedMinor >= recharge.priceMinor) continue;
    await deps.payments.refundPayment({
      paymentIntentId: recharge.paymentIntentId,
      idempotencyKey: deskRefundKey(recharge.rechargeId),
      reason: 'support_desk',
      caseId,
    });
    await applyClaim(
      { store: deps.store, now: deps.now, newId: deps.newId },
      // No event marker: the recharge's version and its refundedMinor make this apply once.
      { ops: () => [], caseSeed: caseId },
      recharge.rechargeId,
      { deskCaseId: caseId },
      (current) => (current.refundedMinor >= current.priceMinor ? undefined : { refundedMinor: current.priceMinor }),
    );
  }
}

const reportItem = z.object({
  transactionId: z.string().min(1),
  status: z.enum(['open', 'resolved']),
  createdAt: z.string().min(1),
  outcome: reportOutcomeSchema.optional(),
  resolvedAt: z.string().optional(),
});

export interface ReportStatus {
  reportId: string;
  transactionId: string;
  status: 'open' | 'resolved';
  createdAt: string;
  outcome: ReportOutcome | null;
  resolvedAt: string | null;
}

/** GET /v1/wallet/reports/{reportId}: the owner's own report only; anyone else's is NOT_FOUND. */
export async function getReportStatus(store: LedgerStore, caller: Caller, reportId: string): Promise<ReportStatus> {
  const item = await store.getItem(keys.transactionReport(caller.userId, reportId), { consistent: true });
  if (!item) throw new NotFoundError('No such report.');
  const parsed = reportItem.safeParse(item);
  if (!parsed.success) throw new InvariantViolation(`report ${reportId} is malformed: ${parsed.error.message}`);
  const report = parsed.data;
  return {
    reportId,
    transactionId: report.transactionId,
    status: report.status,
    createdAt: report.createdAt,
    outcome: report.outcome ?? null,
    resolvedAt: report.resolvedAt ?? null,
  };
}
