import { idempotencyItems } from '../adapters/dynamo/idempotency-items';
import type { LedgerStore, WriteOp } from '../ports/ledger-store';
import { IdempotencyKeyReusedError, InvariantViolation } from '../domain/errors';

/**
 * Client idempotency keys (docs/API.md, Idempotency), built into the money transaction itself: the
 * record that stores a success is written by the same TransactWriteItems that moves the money,
 * under a condition that it is new (or expired). So two identical requests at the same instant
 * do the work once: the loser's transaction is cancelled on the record, and it replays the
 * winner's answer. Refusals (409s) are never stored, so the same key may succeed later.
 */

/** docs/API.md: the same key replays within 24 hours. TTL deletes later; expiry is also checked here. */
export const IDEMPOTENCY_WINDOW_SECONDS = 24 * 60 * 60;

export interface IdempotentRequest {
  userId: string;
  /** The route family, e.g. 'gift', 'recharge', 'payout': keys are scoped to the caller and route. */
  scope: string;
  key: string;
  /** Hash of what the request asks for; the same key with another fingerprint is 422. */
  fingerprint: string;
}

export interface StoredAnswer<T> {
  status: number;
  body: T;
}

/** Thrown by the transaction when another request with the same key already succeeded. */
export class AlreadyDone<T> extends Error {
  constructor(readonly answer: StoredAnswer<T>) {
    super('idempotent replay');
    this.name = 'AlreadyDone';
  }
}

function epochSeconds(now: Date): number {
  return Math.floor(now.getTime() / 1000);
}

function answerFrom<T>(
  request: IdempotentRequest,
  item: Record<string, unknown> | undefined,
  now: Date,
): StoredAnswer<T> | undefined {
  if (!item) return undefined;
  if (typeof item.expiresAt === 'number' && item.expiresAt <= epochSeconds(now)) return undefined;
  if (item.fingerprint !== request.fingerprint) {
    throw new IdempotencyKeyReusedError('This Idempotency-Key was used with a different request.');
  }
  if (typeof item.status !== 'number' || typeof item.answer !== 'string') {
    throw new InvariantViolation(`idempotency record for ${request.scope} has no stored answer`);
  }
  return { status: item.status, body: JSON.parse(item.answer) as T };
}

/** The stored answer for this key, if a request with it already succeeded (and has not expired). */
export async function findStoredAnswer<T>(
  store: LedgerStore,
  request: IdempotentRequest,
  now: Date,
): Promise<StoredAnswer<T> | undefined> {
  const item = await store.getItem(idempotencyItems.key(request), { consistent: true });
  return answerFrom<T>(request, item, now);
}

/**
 * The op that records this request's success inside the money transaction. If a record already
 * exists and is live, the transaction is cancelled and the op throws AlreadyDone (same request)
 * or IDEMPOTENCY_KEY_REUSED (another request).
 */
export function recordAnswerOp<T>(
  store: LedgerStore,
  request: IdempotentRequest,
  answer: StoredAnswer<T>,
  now: Date,
): WriteOp {
  return idempotencyItems.record(
    store,
    request,
    {
      fingerprint: request.fingerprint,
      status: answer.status,
      answer: JSON.stringify(answer.body),
      createdAt: now.toISOString(),
      expiresAt: epochSeconds(now) + IDEMPOTENCY_WINDOW_SECONDS,
    },
    epochSeconds(now),
    (old) => {
      const stored = answerFrom<T>(request, old, now);
      if (!stored) return new InvariantViolation('idempotency record condition failed on a record that is not live');
      return new AlreadyDone(stored);
    },
  );
}

/**
 * Runs `work` once per key: a stored answer is replayed without doing anything; otherwise `work`
 * runs and must put `recordAnswerOp` into its transaction. A concurrent duplicate that loses the
 * race surfaces as AlreadyDone and is replayed too.
 */
export async function once<T>(
  store: LedgerStore,
  request: IdempotentRequest,
  now: Date,
  work: () => Promise<StoredAnswer<T>>,
): Promise<StoredAnswer<T> & { replayed: boolean }> {
  const stored = await findStoredAnswer<T>(store, request, now);
  if (stored) return { ...stored, replayed: true };
  try {
    return { ...(await work()), replayed: false };
  } catch (error) {
    if (error instanceof AlreadyDone) return { ...(error.answer as StoredAnswer<T>), replayed: true };
    throw error;
  }
}
