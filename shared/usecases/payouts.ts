import * as z from 'zod';
import { newId } from '../adapters/clock';
import { conditions } from '../adapters/dynamo/conditions';
import { keys } from '../adapters/dynamo/keys';
import {
  entryItem,
  type CreatorBalance,
  type Item,
  type LedgerStore,
  type WriteOp,
} from '../adapters/dynamo/ledger-store';
import type { PayoutQueue } from '../adapters/payout-queue';
import { PermanentTransferError, type ConnectPayouts, type TransferMade } from '../adapters/stripe-connect';
import { type Economy, payoutCents } from '../domain/economy';
import {
  InsufficientDiamondsError,
  InvariantViolation,
  NotFoundError,
  PayoutAccountMissingError,
  PayoutLimitExceededError,
  TransientDependencyError,
  WalletLockedError,
} from '../domain/errors';
import { assertAdult, type Caller } from '../domain/identity';
import type { LedgerEntry } from '../domain/ledger';
import type { Money } from '../domain/money';
import { retryWithBackoff, type RetryPolicy } from '../domain/retry';
import { logger } from '../logger';
import { once, recordAnswerOp, type IdempotentRequest, type StoredAnswer } from './idempotency';
import { readPayoutAccount } from './payout-account';

/**
 * Creator payouts (API.md, Creator payouts; DESIGN.md, Money rules: outbox).
 *
 * request  -> one transaction moves diamonds from available to pending and writes the payout
 *             (status `requested`, in the sparse `byStatus` index), its entry and the idempotency
 *             record; then the payout id goes to SQS. A lost message is found by the sweeper.
 * worker   -> marks the payout `processing`, makes the Stripe transfer with the payout id as its
 *             idempotency key, then settles in one transaction whose condition (status is still
 *             `processing`) lets exactly one delivery settle: `paid` (pending goes out) or, on a
 *             permanent refusal, `failed` (the diamonds come back).
 * sweeper  -> sends open payouts again when nothing moved them for a while.
 */

export const PAYOUT_IDEMPOTENCY_SCOPE = 'payout';
/** The sparse index partition of payouts not yet settled. */
export const PAYOUT_OPEN = 'PAYOUT_OPEN';
export const PAYOUT_CURRENCY = 'USD';
export const PAYOUT_STATUSES = ['requested', 'processing', 'paid', 'failed'] as const;
export type PayoutStatus = (typeof PAYOUT_STATUSES)[number];

/** Stripe keeps idempotency keys 24 hours; from 23 h (an hour of margin for clocks) a payout looks for its transfer first. */
export const TRANSFER_LOOKUP_AFTER_MS = 23 * 60 * 60 * 1000;
/**
 * Short Stripe blips (a 500, a 429) are retried inside the delivery; anything longer goes back
 * to the queue. The SDK itself retries once more per attempt (stripe-client.ts).
 */
export const TRANSFER_RETRY: RetryPolicy = { maxAttempts: 3, baseDelayMs: 250, maxDelayMs: 1_500 };
/** UTC day counters are kept two days past their day, then TTL removes them. */
const PAYOUT_DAY_RETENTION_SECONDS = 3 * 24 * 60 * 60;
/** Sweeper: index page size, most items read and most messages sent per run (bounded work per schedule tick). */
export const SWEEP_PAGE_SIZE = 100;
export const SWEEP_MAX_EXAMINED = 2_000;
export const SWEEP_MAX_RESENT = 500;
/** A payout the sweeper already re-sent waits twice as long each time, up to 2^5 times the threshold. */
export const SWEEP_MAX_BACKOFF_DOUBLINGS = 5;
/** The largest page of GET /v1/payouts. */
export const MAX_PAYOUT_PAGE = 100;

const USER_PAYOUT_PREFIX = 'PAYOUT#';
const USER_PAYOUT_PREFIX_END = 'PAYOUT$';

const STATUS_NAMES = { '#status': 'status' } as const;

// ---------------------------------------------------------------------------------------------
// The payout record
// ---------------------------------------------------------------------------------------------

const payoutItemSchema = z.object({
  payoutId: z.string().min(1),
  userId: z.string().min(1),
  accountId: z.string().min(1),
  diamonds: z.number().int().positive(),
  amount: z.object({ amount: z.number().int().nonnegative(), currency: z.literal(PAYOUT_CURRENCY) }),
  status: z.enum(PAYOUT_STATUSES),
  createdAt: z.string().min(1),
  updatedAt: z.string().min(1),
  /** When something last pushed the payout along (request, worker, sweeper); the index sort key. */
  statusSk: z.string().optional(),
  sweeps: z.number().int().nonnegative().optional(),
  attempts: z.number().int().nonnegative().optional(),
  transferId: z.string().optional(),
  failureCode: z.string().optional(),
});
export type Payout = z.infer<typeof payoutItemSchema>;

export function payoutFromItem(item: Item): Payout {
  const parsed = payoutItemSchema.safeParse(item);
  if (!parsed.success)
    throw new InvariantViolation(`payout item ${String(item.pk)} is malformed: ${parsed.error.message}`);
  return parsed.data;
}

export interface PayoutView {
  payoutId: string;
  status: PayoutStatus;
  diamonds: number;
  amount: Money;
  createdAt: string;
  updatedAt: string;
  /** Why Stripe refused the transfer, when the payout failed. */
  failureCode?: string;
}

export function payoutView(payout: Payout): PayoutView {
  return {
    payoutId: payout.payoutId,
    status: payout.status,
    diamonds: payout.diamonds,
    amount: { amount: payout.amount.amount, currency: payout.amount.currency },
    createdAt: payout.createdAt,
    updatedAt: payout.updatedAt,
    ...(payout.status === 'failed' && payout.failureCode !== undefined && { failureCode: payout.failureCode }),
  };
}

export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** An immutable payout entry on the user's main partition; its deltas sum into the wallet's fields. */
function entryOp(
  store: LedgerStore,
  userId: string,
  type: LedgerEntry['type'],
  now: Date,
  deltas: { diamonds: number; pendingDiamonds: number },
  ref: LedgerEntry['ref'],
): WriteOp {
  const createdAt = now.toISOString();
  const value: LedgerEntry = {
    id: newId('tx', now),
    userId,
    type,
    coins: 0,
    owedCoins: 0,
    diamonds: deltas.diamonds,
    pendingDiamonds: deltas.pendingDiamonds,
    createdAt,
    ref,
  };
  return store.put(
    `${type} entry`,
    entryItem(keys.entry(userId, createdAt, value.id), value),
    { expression: conditions.isNew },
    () => new InvariantViolation('entry id collided'),
  );
}

// ---------------------------------------------------------------------------------------------
// POST /v1/payouts
// ---------------------------------------------------------------------------------------------

export interface PayoutRequestedBody {
  payoutId: string;
  status: 'requested';
  diamonds: number;
  amount: Money;
}

export interface RequestPayoutDeps {
  store: LedgerStore;
  queue: PayoutQueue;
  economy: Economy;
  now: () => Date;
}

/** A concurrent payout folded the creator's shards first: read again. */
class FoldRaced extends Error {}

/** Every write that changes a wallet's diamonds or pending diamonds on the main item bumps this (see readCreatorBalance). */
export const BUMP_DIAMONDS_VERSION = 'diamondsVersion = if_not_exists(diamondsVersion, :zero) + :one';

/**
 * The payout's debit, with the creator's shards folded in by the same write: the main item's
 * diamonds take what the shards gained since the last fold (`shardDiamondsFolded` moves up to
 * the shard total that was read), minus the payout. Shards are never written, so the fold cannot
 * conflict with gifts landing on them; its condition (the fold mark is still what was read, the
 * main item covers what the shards do not, the wallet is unlocked) sits on one item.
 */
function payoutDebitOp(store: LedgerStore, userId: string, balance: CreatorBalance, diamonds: number): WriteOp {
  const foldDelta = balance.shardCredits - balance.shardDiamondsFolded;
  const need = diamonds - foldDelta;
  const foldedAsRead =
    balance.shardDiamondsFolded === 0
      ? '(attribute_not_exists(shardDiamondsFolded) OR shardDiamondsFolded = :foldedBefore)'
      : 'shardDiamondsFolded = :foldedBefore';
  const condition = [conditions.walletUnlocked, foldedAsRead, ...(need > 0 ? ['diamonds >= :need'] : [])].join(' AND ');
  return store.update(
    'payout debit',
    keys.wallet(userId),
    {
      expression: `SET diamonds = if_not_exists(diamonds, :zero) + :net, pendingDiamonds = if_not_exists(pendingDiamonds, :zero) + :diamonds, shardDiamondsFolded = :foldedAfter, ${BUMP_DIAMONDS_VERSION}`,
      condition,
      values: {
        ':net': foldDelta - diamonds,
        ':diamonds': diamonds,
        ':zero': 0,
        ':one': 1,
        ':false': false,
        ':foldedBefore': balance.shardDiamondsFolded,
        ':foldedAfter': balance.shardCredits,
        ...(need > 0 && { ':need': need }),
      },
    },
    (old) => {
      if (old?.locked === true) return new WalletLockedError('The wallet is locked.');
      if ((typeof old?.shardDiamondsFolded === 'number' ? old.shardDiamondsFolded : 0) !== balance.shardDiamondsFolded)
        return new FoldRaced();
      return new InsufficientDiamondsError('Not enough diamonds are available.');
    },
  );
}

/**
 * Requests a payout. The checks run in API.md's order (validation happened at the edge): wallet
 * lock, age, payout account, minimum and whole cents, daily maximum, available diamonds. The reads
 * give the right error; the conditions in the one transaction make it true under concurrency.
 */
/** A payout's debit is tried again when a concurrent payout folded the shards first, at most this often. */
export const MAX_PAYOUT_DEBIT_ATTEMPTS = 5;

/** One attempt: the checks in API.md's order against one consistent read, then the one transaction. */
async function debitPayout(
  deps: RequestPayoutDeps,
  caller: Caller,
  diamonds: number,
  request: IdempotentRequest,
  now: Date,
): Promise<StoredAnswer<PayoutRequestedBody>> {
  const { userId } = caller;
  const day = utcDay(now);
  const [balance, account, dayItem] = await Promise.all([
    deps.store.readCreatorBalance(userId, { consistent: true }),
    readPayoutAccount(deps.store, userId, { consistent: true }),
    deps.store.getItem(keys.payoutDay(userId, day), { consistent: true }),
  ]);
  const { wallet } = balance;
  if (wallet.locked) throw new WalletLockedError('The wallet is locked.');
  assertAdult(caller, now);
  if (!account?.payoutsEnabled) {
    throw new PayoutAccountMissingError('Link a payout account and finish its onboarding before requesting a payout.');
  }
  const cents = payoutCents(deps.economy, diamonds);
  const maxPerDay = deps.economy.maxPayoutDiamondsPerDay;
  const paidToday = typeof dayItem?.diamonds === 'number' ? dayItem.diamonds : 0;
  if (diamonds > maxPerDay || paidToday + diamonds > maxPerDay) {
    throw new PayoutLimitExceededError(
      `Payouts are at most ${maxPerDay} diamonds a UTC day; ${Math.max(0, maxPerDay - paidToday)} are left today.`,
    );
  }
  if (wallet.diamonds < diamonds)
    throw new InsufficientDiamondsError(`Only ${wallet.diamonds} diamonds are available.`);

  const payoutId = newId('po', now);
  const createdAt = now.toISOString();
  const amount: Money = { amount: cents, currency: PAYOUT_CURRENCY };
  const body: PayoutRequestedBody = { payoutId, status: 'requested', diamonds, amount };
  const dayEndSeconds = Math.floor(Date.parse(`${day}T00:00:00.000Z`) / 1000) + 24 * 60 * 60;
  const ops: WriteOp[] = [
    // First: a concurrent duplicate must replay the winner's answer, not report the debit's failure.
    recordAnswerOp(deps.store, request, { status: 202, body }, now),
    payoutDebitOp(deps.store, userId, balance, diamonds),
    deps.store.update(
      'payout day',
      keys.payoutDay(userId, day),
      {
        expression: 'SET diamonds = if_not_exists(diamonds, :zero) + :diamonds, expiresAt = :expiresAt',
        // The day's total after this payout stays within the maximum.
        condition: 'attribute_not_exists(diamonds) OR diamonds <= :bound',
        values: {
          ':diamonds': diamonds,
          ':zero': 0,
          ':bound': maxPerDay - diamonds,
          ':expiresAt': dayEndSeconds + PAYOUT_DAY_RETENTION_SECONDS,
        },
      },
      () => new PayoutLimitExceededError(`Payouts are at most ${maxPerDay} diamonds a UTC day.`),
    ),
    deps.store.put(
      'payout',
      {
        ...keys.payout(payoutId),
        payoutId,
        userId,
        accountId: account.accountId,
        diamonds,
        amount,
        status: 'requested',
        createdAt,
        updatedAt: createdAt,
        statusPk: PAYOUT_OPEN,
        statusSk: createdAt,
        sweeps: 0,
        attempts: 0,
      },
      { expression: conditions.isNew },
      () => new InvariantViolation(`payout id ${payoutId} collided`),
    ),
    deps.store.put(
      'user payout',
      { ...keys.userPayout(userId, createdAt, payoutId), payoutId },
      { expression: conditions.isNew },
      () => new InvariantViolation(`payout id ${payoutId} collided`),
    ),
    entryOp(
      deps.store,
      userId,
      'payout_requested',
      now,
      { diamonds: -diamonds, pendingDiamonds: diamonds },
      { payoutId },
    ),
  ];
  await deps.store.transactWrite(ops);
  return { status: 202, body };
}

export async function requestPayout(
  deps: RequestPayoutDeps,
  caller: Caller,
  input: { diamonds: number },
  idempotency: { key: string; fingerprint: string },
): Promise<StoredAnswer<PayoutRequestedBody> & { replayed: boolean }> {
  const now = deps.now();
  const userId = caller.userId;
  const request: IdempotentRequest = {
    userId,
    scope: PAYOUT_IDEMPOTENCY_SCOPE,
    key: idempotency.key,
    fingerprint: idempotency.fingerprint,
  };
  const answer = await once<PayoutRequestedBody>(deps.store, request, now, async () => {
    for (let attempt = 0; attempt < MAX_PAYOUT_DEBIT_ATTEMPTS; attempt += 1) {
      try {
        return await debitPayout(deps, caller, input.diamonds, request, now);
      } catch (error) {
        if (!(error instanceof FoldRaced)) throw error;
      }
    }
    throw new TransientDependencyError('concurrent payouts kept folding the balance; try again');
  });
  if (!answer.replayed) {
    try {
      await deps.queue.send(answer.body.payoutId);
    } catch (error) {
      // Outbox: the payout is committed; the sweeper sends it when it has sat `requested` too long.
      logger.warn('payout committed but not queued; the sweeper will send it', {
        payoutId: answer.body.payoutId,
        error: error instanceof Error ? error : String(error),
      });
    }
  }
  return answer;
}

// ---------------------------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------------------------

export interface ProcessPayoutDeps {
  store: LedgerStore;
  connect: ConnectPayouts;
  now: () => Date;
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
      deps.store.update(
        'payout processing',
        keys.payout(payoutId),
        {
          expression:
            'SET #status = :processing, updatedAt = :now, statusSk = :now, attempts = if_not_exists(attempts, :zero) + :one',
          condition: '#status IN (:requested, :processing)',
          names: STATUS_NAMES,
          values: {
            ':processing': 'processing',
            ':requested': 'requested',
            ':now': startedAt.toISOString(),
            ':zero': 0,
            ':one': 1,
          },
        },
        settledOrInvariant('mark processing'),
      ),
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

async function settle(
  deps: ProcessPayoutDeps,
  payout: Payout,
  result: { kind: 'paid'; transferId: string } | { kind: 'failed'; failureCode: string },
): Promise<ProcessOutcome> {
  const now = deps.now();
  const nowIso = now.toISOString();
  const { payoutId, userId, diamonds } = payout;
  const ops: WriteOp[] = [];
  if (result.kind === 'paid') {
    ops.push(
      deps.store.update(
        'payout paid',
        keys.payout(payoutId),
        {
          expression: 'SET #status = :paid, transferId = :transferId, updatedAt = :now REMOVE statusPk, statusSk',
          condition: '#status = :processing',
          names: STATUS_NAMES,
          values: { ':paid': 'paid', ':transferId': result.transferId, ':now': nowIso, ':processing': 'processing' },
        },
        settledOrInvariant('settle paid'),
      ),
      deps.store.update(
        'pending paid out',
        keys.wallet(userId),
        {
          expression: `SET pendingDiamonds = pendingDiamonds - :diamonds, ${BUMP_DIAMONDS_VERSION}`,
          condition: conditions.pendingCoversSettlement,
          values: { ':diamonds': diamonds, ':zero': 0, ':one': 1 },
        },
        () => new InvariantViolation(`pending diamonds of ${userId} do not cover payout ${payoutId}`),
      ),
      entryOp(
        deps.store,
        userId,
        'payout_paid',
        now,
        { diamonds: 0, pendingDiamonds: -diamonds },
        { payoutId, transferId: result.transferId },
      ),
    );
  } else {
    ops.push(
      deps.store.update(
        'payout failed',
        keys.payout(payoutId),
        {
          expression: 'SET #status = :failed, failureCode = :code, updatedAt = :now REMOVE statusPk, statusSk',
          condition: '#status = :processing',
          names: STATUS_NAMES,
          values: { ':failed': 'failed', ':code': result.failureCode, ':now': nowIso, ':processing': 'processing' },
        },
        settledOrInvariant('settle failed'),
      ),
      deps.store.update(
        'pending returned',
        keys.wallet(userId),
        {
          expression: `SET diamonds = diamonds + :diamonds, pendingDiamonds = pendingDiamonds - :diamonds, ${BUMP_DIAMONDS_VERSION}`,
          condition: conditions.pendingCoversSettlement,
          values: { ':diamonds': diamonds, ':zero': 0, ':one': 1 },
        },
        () => new InvariantViolation(`pending diamonds of ${userId} do not cover payout ${payoutId}`),
      ),
      entryOp(
        deps.store,
        userId,
        'payout_reversed',
        now,
        { diamonds, pendingDiamonds: -diamonds },
        { payoutId, failureCode: result.failureCode },
      ),
    );
    // A failed payout gives its day's allowance back while that day lasts; a past day no longer matters.
    const requestDay = utcDay(new Date(payout.createdAt));
    if (requestDay === utcDay(now)) {
      ops.push(
        deps.store.update('payout day returned', keys.payoutDay(userId, requestDay), {
          expression: 'ADD diamonds :minus',
          values: { ':minus': -diamonds },
        }),
      );
    }
  }
  try {
    await deps.store.transactWrite(ops);
  } catch (error) {
    if (error instanceof AlreadySettled) return 'duplicate';
    throw error;
  }
  logger.info('payout settled', { payoutId, status: result.kind });
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

// ---------------------------------------------------------------------------------------------
// The sweeper
// ---------------------------------------------------------------------------------------------

export interface SweepDeps {
  store: LedgerStore;
  queue: PayoutQueue;
  now: () => Date;
  requestedAfterSeconds: number;
  processingAfterSeconds: number;
}

export interface SweepResult {
  examined: number;
  resent: number;
  sendFailures: number;
}

/** Someone moved the payout since the index was read. */
class PayoutMoved extends Error {}

async function sweepOne(deps: SweepDeps, payout: Payout, now: Date, result: SweepResult): Promise<void> {
  if (payout.status !== 'requested' && payout.status !== 'processing') return;
  const touchedAt = payout.statusSk ?? payout.updatedAt;
  const thresholdSeconds = payout.status === 'requested' ? deps.requestedAfterSeconds : deps.processingAfterSeconds;
  const backoffSeconds = thresholdSeconds * 2 ** Math.min(payout.sweeps ?? 0, SWEEP_MAX_BACKOFF_DOUBLINGS);
  if (Date.parse(touchedAt) + backoffSeconds * 1000 > now.getTime()) return;
  try {
    await deps.store.transactWrite([
      deps.store.update(
        'payout swept',
        keys.payout(payout.payoutId),
        {
          expression: 'SET statusSk = :now, sweeps = if_not_exists(sweeps, :zero) + :one',
          condition: '#status = :status AND statusSk = :seen',
          names: STATUS_NAMES,
          values: { ':now': now.toISOString(), ':zero': 0, ':one': 1, ':status': payout.status, ':seen': touchedAt },
        },
        () => new PayoutMoved(),
      ),
    ]);
  } catch (error) {
    if (error instanceof PayoutMoved) return;
    throw error;
  }
  const sweeps = (payout.sweeps ?? 0) + 1;
  if (sweeps > SWEEP_MAX_BACKOFF_DOUBLINGS) {
    // Still retried (the diamonds stay pending, never lost), but a human should look: Stripe down
    // for long, a DLQ filling up, or a payout the worker cannot settle.
    logger.error('payout still open after many re-sends', {
      payoutId: payout.payoutId,
      status: payout.status,
      sweeps,
      attempts: payout.attempts ?? 0,
    });
  }
  try {
    await deps.queue.send(payout.payoutId);
    result.resent += 1;
    logger.info('payout re-sent by the sweeper', { payoutId: payout.payoutId, status: payout.status, sweeps });
  } catch (error) {
    // Claimed but not sent: the next run after the (longer) wait tries again.
    result.sendFailures += 1;
    logger.warn('sweeper could not send a payout', {
      payoutId: payout.payoutId,
      error: error instanceof Error ? error : String(error),
    });
  }
}

/**
 * Finds open payouts nothing has moved for a while and sends them again: `requested` ones whose
 * message was lost (a crash before SendMessage, a queue that lost it) and `processing` ones whose
 * delivery died. Each resend is claimed with a conditional write first, so overlapping runs send
 * once, and a payout re-sent before waits twice as long the next time (bounded), so a long Stripe
 * outage costs a message every few minutes per payout, not every tick.
 */
export async function sweepPayouts(deps: SweepDeps): Promise<SweepResult> {
  const now = deps.now();
  const nowMs = now.getTime();
  const cutoff = new Date(
    nowMs - Math.min(deps.requestedAfterSeconds, deps.processingAfterSeconds) * 1000,
  ).toISOString();
  const result: SweepResult = { examined: 0, resent: 0, sendFailures: 0 };
  let startKey: Awaited<ReturnType<LedgerStore['query']>>['lastEvaluatedKey'];
  do {
    // Oldest first. A claimed payout moves past the cutoff, so it does not come back this run.
    const page = await deps.store.query({
      indexName: 'byStatus',
      keyCondition: 'statusPk = :open AND statusSk <= :cutoff',
      values: { ':open': PAYOUT_OPEN, ':cutoff': cutoff },
      ascending: true,
      limit: SWEEP_PAGE_SIZE,
      ...(startKey && { exclusiveStartKey: startKey }),
    });
    for (const item of page.items) {
      if (result.examined >= SWEEP_MAX_EXAMINED || result.resent >= SWEEP_MAX_RESENT) return result;
      result.examined += 1;
      await sweepOne(deps, payoutFromItem(item), now, result);
    }
    startKey = page.lastEvaluatedKey;
  } while (startKey && result.examined < SWEEP_MAX_EXAMINED && result.resent < SWEEP_MAX_RESENT);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

/** GET /v1/payouts/{payoutId}: someone else's payout is NOT_FOUND, so its existence never leaks. */
export async function getPayout(deps: { store: LedgerStore }, caller: Caller, payoutId: string): Promise<PayoutView> {
  const item = await deps.store.getItem(keys.payout(payoutId));
  if (!item || item.userId !== caller.userId) throw new NotFoundError('No such payout.');
  return payoutView(payoutFromItem(item));
}

export function encodePayoutCursor(sortKey: string): string {
  return Buffer.from(sortKey, 'utf8').toString('base64url');
}
export function decodePayoutCursor(cursor: string): string | undefined {
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  return decoded.startsWith(USER_PAYOUT_PREFIX) ? decoded : undefined;
}

/** GET /v1/payouts: the caller's payouts, newest first, from the per-user index items. */
export async function listPayouts(
  deps: { store: LedgerStore },
  caller: Caller,
  page: { limit: number; cursor?: string },
): Promise<{ items: PayoutView[]; nextCursor: string | null }> {
  const limit = Math.min(Math.max(1, page.limit), MAX_PAYOUT_PAGE);
  const upper = page.cursor === undefined ? USER_PAYOUT_PREFIX_END : decodePayoutCursor(page.cursor);
  if (upper === undefined) throw new InvariantViolation('listPayouts got a cursor the edge should have refused');
  const { items } = await deps.store.query({
    keyCondition: 'pk = :pk AND sk BETWEEN :lower AND :upper',
    values: { ':pk': keys.wallet(caller.userId).pk, ':lower': USER_PAYOUT_PREFIX, ':upper': upper },
    ascending: false,
    // One more to know whether a next page exists, and one more because BETWEEN includes the cursor.
    limit: limit + (page.cursor === undefined ? 1 : 2),
  });
  const index = items.filter((item) => typeof item.sk === 'string' && item.sk < upper);
  const pageItems = index.slice(0, limit);
  const payoutIds = pageItems.map((item) => String(item.payoutId));
  const payouts = new Map(
    (
      await deps.store.batchGet(
        payoutIds.map((payoutId) => keys.payout(payoutId)),
        { consistent: true },
      )
    ).map((item) => {
      const payout = payoutFromItem(item);
      return [payout.payoutId, payout] as const;
    }),
  );
  const views: PayoutView[] = [];
  for (const payoutId of payoutIds) {
    const payout = payouts.get(payoutId);
    if (!payout) throw new InvariantViolation(`user payout index names a missing payout ${payoutId}`);
    views.push(payoutView(payout));
  }
  const last = pageItems[pageItems.length - 1];
  const nextCursor = index.length > limit && last ? encodePayoutCursor(String(last.sk)) : null;
  return { items: views, nextCursor };
}
