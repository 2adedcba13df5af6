import { keys } from '../../adapters/dynamo/keys';
import { payoutItems } from '../../adapters/dynamo/payout-items';
import type { Item, LedgerStore, WriteOp } from '../../ports/ledger-store';
import { PermanentTransferError, type ConnectPayouts, type TransferMade } from '../../adapters/stripe-connect';
import { InvariantViolation, TransientDependencyError } from '../../domain/errors';
import { retryWithBackoff, type RetryPolicy } from '../../domain/retry';
import { logger } from '../../logger';
import { entryOp, type NewId, type Payout, payoutFromItem, utcDay } from './record';

/** The worker: one delivery of a payout message makes the Stripe transfer and settles the payout. */

/** Stripe keeps idempotency keys 24 hours; from 23 h (an hour of margin for clocks) a payout looks for its transfer first. */
export const TRANSFER_LOOKUP_AFTER_MS = 23 * 60 * 60 * 1000;
/**
 * Short Stripe blips (a 500, a 429) are retried inside the delivery; anything longer goes back
 * to the queue. The SDK itself retries once more per attempt (stripe-client.ts).
 */
export const TRANSFER_RETRY: RetryPolicy = { maxAttempts: 3, baseDelayMs: 250, maxDelayMs: 1_500 };

export interface ProcessPayoutDeps {
  store: LedgerStore;
  connect: ConnectPayouts;
  now: () => Date;
  /** The ids of the settlement's ledger entries. */
  newId: NewId;
  /** Pushes the creator's wallet to their connections after a settlement; best effort. */
  notify?: (userId: string) => Promise<void>;
  transferRetry?: RetryPolicy;
  sleep?: (ms: number) => Promise<void>;
}

/** The message names no payout this ledger knows: it can never succeed (a poison message). */
export class UnknownPayoutError extends Error {
  constructor(readonly payoutId: string) {
    super(`no payout ${payoutId}`);
    this.name = 'UnknownPayoutError';
  }
}

/** Another delivery settled the payout first. */
class AlreadySettled extends Error {}

export type ProcessOutcome = 'paid' | 'failed' | 'duplicate';

const settledOrInvariant = (what: string) => (old: Item | undefined) =>
  old?.status === 'paid' || old?.status === 'failed'
    ? new AlreadySettled()
    : new InvariantViolation(`${what}: payout is ${String(old?.status)}`);

/** The creator's pending diamonds must cover a settling payout: anything else is a broken ledger. */
const pendingShort = (payout: Payout) => () =>
  new InvariantViolation(`pending diamonds of ${payout.userId} do not cover payout ${payout.payoutId}`);

/**
 * Handles one delivery of a payout message. Safe to run any number of times, concurrently: the
 * transfer's idempotency key makes one transfer, the settle condition makes one settlement.
 * Transient errors are thrown (the queue retries); a permanent refusal fails and reverses.
 */
export async function processPayout(deps: ProcessPayoutDeps, payoutId: string): Promise<ProcessOutcome> {
  const item = await deps.store.getItem(keys.payout(payoutId), { consistent: true });
  if (!item) throw new UnknownPayoutError(payoutId);
  const payout = payoutFromItem(item);
  if (payout.status === 'paid' || payout.status === 'failed') return 'duplicate';

  const startedAt = deps.now();
  try {
    await deps.store.transactWrite([
      payoutItems.processing(deps.store, payoutId, startedAt.toISOString(), settledOrInvariant('mark processing')),
    ]);
  } catch (error) {
    if (error instanceof AlreadySettled) return 'duplicate';
    throw error;
  }

  let transfer: TransferMade | undefined;
  try {
    if (startedAt.getTime() - Date.parse(payout.createdAt) >= TRANSFER_LOOKUP_AFTER_MS) {
      // Stripe may have forgotten the key: a transfer made by an earlier delivery is found by its group.
      transfer = await deps.connect.findTransferByGroup(payoutId);
    }
    transfer ??= await retryWithBackoff(
      () =>
        deps.connect.createTransfer({
          payoutId,
          userId: payout.userId,
          accountId: payout.accountId,
          amount: payout.amount,
        }),
      deps.transferRetry ?? TRANSFER_RETRY,
      (error) => error instanceof TransientDependencyError,
      deps.sleep,
    );
  } catch (error) {
    if (!(error instanceof PermanentTransferError)) throw error;
    logger.warn('Stripe refused the payout transfer; reversing', { payoutId, code: error.code });
    const outcome = await settle(deps, payout, { kind: 'failed', failureCode: error.code });
    if (outcome !== 'duplicate') await notifyQuietly(deps, payout.userId);
    return outcome;
  }
  const outcome = await settle(deps, payout, { kind: 'paid', transferId: transfer.transferId });
  if (outcome !== 'duplicate') await notifyQuietly(deps, payout.userId);
  return outcome;
}

type Settlement = { kind: 'paid'; transferId: string } | { kind: 'failed'; failureCode: string };

/** Paid: pending diamonds go out for good. */
function paidOps(deps: ProcessPayoutDeps, payout: Payout, transferId: string, now: Date): WriteOp[] {
  const { payoutId, userId, diamonds } = payout;
  return [
    payoutItems.paid(deps.store, payoutId, transferId, now.toISOString(), settledOrInvariant('settle paid')),
    payoutItems.pendingPaidOut(deps.store, userId, diamonds, pendingShort(payout)),
    entryOp(
      deps.store,
      deps.newId,
      userId,
      'payout_paid',
      now,
      { diamonds: 0, pendingDiamonds: -diamonds },
      { payoutId, transferId },
    ),
  ];
}

/** Failed: pending diamonds come back to available, and the day's allowance while that day lasts. */
function failedOps(deps: ProcessPayoutDeps, payout: Payout, failureCode: string, now: Date): WriteOp[] {
  const { payoutId, userId, diamonds } = payout;
  const ops = [
    payoutItems.failed(deps.store, payoutId, failureCode, now.toISOString(), settledOrInvariant('settle failed')),
    payoutItems.pendingReturned(deps.store, userId, diamonds, pendingShort(payout)),
    entryOp(
      deps.store,
      deps.newId,
      userId,
      'payout_reversed',
      now,
      { diamonds, pendingDiamonds: -diamonds },
      { payoutId, failureCode },
    ),
  ];
  // A past day no longer matters.
  const requestDay = utcDay(new Date(payout.createdAt));
  if (requestDay === utcDay(now)) {
    ops.push(payoutItems.dayReturned(deps.store, userId, requestDay, diamonds));
  }
  return ops;
}

async function settle(deps: ProcessPayoutDeps, payout: Payout, result: Settlement): Promise<ProcessOutcome> {
  const now = deps.now();
  const ops =
    result.kind === 'paid'
      ? paidOps(deps, payout, result.transferId, now)
      : failedOps(deps, payout, result.failureCode, now);
  try {
    await deps.store.transactWrite(ops);
  } catch (error) {
    if (error instanceof AlreadySettled) return 'duplicate';
    throw error;
  }
  logger.info('payout settled', { payoutId: payout.payoutId, status: result.kind });
  return result.kind;
}

async function notifyQuietly(deps: ProcessPayoutDeps, userId: string): Promise<void> {
  if (!deps.notify) return;
  try {
    await deps.notify(userId);
  } catch (error) {
    // The settlement is committed; a missed push is caught up by the next GET /v1/wallet.
    logger.warn('wallet push after a payout failed', { userId, error: error instanceof Error ? error : String(error) });
  }
}
