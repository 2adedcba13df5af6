import { dynamoClient, perConfiguredValue } from '../adapters/clients';
import { DynamoSharedRateCounter, type SharedRateCounter } from '../adapters/dynamo/rate-counter';
import { rateLimitConfig, readRateLimitConfig, sharedRateLimitConfig, tablesConfig } from '../config';
import { RateLimitedError } from '../domain/errors';
import { logger } from '../logger';

/**
 * A per-user token bucket held in memory by each function instance. API Gateway throttles per
 * stage and route, not per user; this bounds one user's requests per instance, UserRateLimiter
 * below adds the ceiling across instances, and the stage throttle bounds the total (docs/DESIGN.md,
 * rate limits).
 */
export class TokenBucketLimiter {
  private readonly buckets = new Map<string, { tokens: number; updatedAtMs: number }>();
  /** Forget idle users so the map stays bounded on a long-lived instance. */
  private static readonly MAX_TRACKED_USERS = 50_000;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Takes `cost` tokens for `userId`, or throws RATE_LIMITED with the seconds until they are free. */
  take(userId: string, cost = 1): void {
    const now = this.nowMs();
    const bucket = this.buckets.get(userId) ?? { tokens: this.burst, updatedAtMs: now };
    const refilled = Math.min(this.burst, bucket.tokens + ((now - bucket.updatedAtMs) / 1000) * this.ratePerSecond);
    if (refilled < cost) {
      const waitSeconds = Math.max(1, Math.ceil((cost - refilled) / this.ratePerSecond));
      this.buckets.set(userId, { tokens: refilled, updatedAtMs: now });
      throw new RateLimitedError('Too many requests. Retry later with the same idempotency key.', {
        retryAfterSeconds: waitSeconds,
      });
    }
    if (!this.buckets.has(userId) && this.buckets.size >= TokenBucketLimiter.MAX_TRACKED_USERS) {
      const oldest = this.buckets.keys().next();
      if (!oldest.done) this.buckets.delete(oldest.value);
    }
    this.buckets.delete(userId);
    this.buckets.set(userId, { tokens: refilled - cost, updatedAtMs: now });
  }
}

/** Writes: every authenticated POST/PUT and the sendGift and join actions. Reads: GETs, ping, unknown frames. */
export type RequestClass = 'write' | 'read';

export interface BucketLimits {
  perSecond: number;
  burst: number;
}

export interface SharedCeiling {
  counter: SharedRateCounter;
  windowSeconds: number;
  /** Requests an instance gathers per user before it adds them to the shared counter in one write. */
  batch: number;
}

interface WindowState {
  window: number;
  /** Requests taken here and not yet added to the shared counter. */
  pending: number;
  /** The shared counter reached the ceiling: refuse here until the window ends, without asking again. */
  full: boolean;
}

/**
 * The per-user limit of every authenticated door (HTTP routes and WebSocket actions). Two layers:
 * - a token bucket per user and class in this instance's memory (the fine-grained limit; writes
 *   keep docs/API.md's 50/s with bursts of 200 by default);
 * - a ceiling across instances: per user, class and fixed window, all instances together take at
 *   most burst + perSecond x window, which is what one instance's bucket allows in a window. Each
 *   instance adds a user's requests to a DynamoDB counter once per `batch`, so a user spread over
 *   N instances gets at most ceiling + N x (batch - 1) per window, and a light user costs nothing.
 * When the shared counter cannot be reached, the request passes on the bucket alone: a limiter
 * outage must not become an API outage (it is logged).
 */
export class UserRateLimiter {
  private readonly buckets: Record<RequestClass, TokenBucketLimiter>;
  private readonly windows = new Map<string, WindowState>();
  private static readonly MAX_TRACKED_WINDOWS = 50_000;

  constructor(
    private readonly limits: Record<RequestClass, BucketLimits>,
    private readonly shared: SharedCeiling | undefined,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.buckets = {
      write: new TokenBucketLimiter(limits.write.perSecond, limits.write.burst, nowMs),
      read: new TokenBucketLimiter(limits.read.perSecond, limits.read.burst, nowMs),
    };
  }

  /** The most one user may take of a class in one shared window, across every instance. */
  ceiling(requestClass: RequestClass): number {
    const limits = this.limits[requestClass];
    return limits.burst + limits.perSecond * (this.shared?.windowSeconds ?? 0);
  }

  /**
   * Takes one request of `requestClass` for `userId`, or throws RATE_LIMITED with a retry hint.
   * `cost` weighs a request that fans out (a query per creator shard) against the bucket.
   * When this request completes a batch, the shared counter's write is returned: await it
   * alongside the request's own work (`whileCounting`). It never rejects.
   */
  take(userId: string, requestClass: RequestClass, cost = 1): Promise<void> | undefined {
    this.buckets[requestClass].take(userId, cost);
    if (!this.shared) return undefined;
    const nowSeconds = this.nowMs() / 1000;
    const window = Math.floor(nowSeconds / this.shared.windowSeconds);
    const windowEndsIn = Math.max(1, Math.ceil((window + 1) * this.shared.windowSeconds - nowSeconds));
    const state = this.windowState(`${requestClass}\u0000${userId}`, window);
    const refuse = () =>
      new RateLimitedError('Too many requests. Retry later with the same idempotency key.', {
        retryAfterSeconds: windowEndsIn,
      });
    if (state.full) throw refuse();
    state.pending += cost;
    if (state.pending < this.shared.batch) return undefined;
    const count = state.pending;
    state.pending = 0;
    // The write runs alongside the request's own work (the caller awaits it before answering, so
    // nothing is left in flight when a Lambda freezes), never ahead of it: awaited first, it made
    // every tenth gift of a busy user a third sequential DynamoDB call, and under a storm it stalled
    // delivery by seconds. Its answer applies from this user's next request on, so a user passes
    // the ceiling by at most what is admitted during one write's round trip.
    const ceiling = this.ceiling(requestClass);
    const expiresAt = Math.ceil((window + 1) * this.shared.windowSeconds + SHARED_COUNTER_TTL_SLACK_SECONDS);
    return this.shared.counter
      .add({ userId, requestClass, window, expiresAt }, count, ceiling)
      .then((total) => {
        if (total === undefined || total >= ceiling) state.full = true;
      })
      .catch((error: unknown) => {
        logger.warn('shared rate counter unavailable; the per-instance limit still holds', {
          error: error instanceof Error ? error : String(error),
        });
      });
  }

  private windowState(key: string, window: number): WindowState {
    const existing = this.windows.get(key);
    if (existing && existing.window === window) return existing;
    const fresh: WindowState = { window, pending: 0, full: false };
    this.windows.delete(key);
    if (this.windows.size >= UserRateLimiter.MAX_TRACKED_WINDOWS) {
      const oldest = this.windows.keys().next();
      if (!oldest.done) this.windows.delete(oldest.value);
    }
    this.windows.set(key, fresh);
    return fresh;
  }
}

/** TTL deletes a window's counter this long after the window (TTL itself may lag by hours; it only saves storage). */
const SHARED_COUNTER_TTL_SLACK_SECONDS = 60;

/**
 * The instance's one limiter, shared by every route the instance serves (locally, one process
 * serves every HTTP route and WebSocket action, so they share the buckets too; on AWS each
 * function is its own instance and the shared counter joins them). The table is read per call:
 * locally, a route whose access does not count requests fails as it would on AWS.
 */
export const userRateLimiter: () => UserRateLimiter = perConfiguredValue(
  () => tablesConfig().LEDGER_TABLE,
  (table) => {
    const writes = rateLimitConfig();
    const reads = readRateLimitConfig();
    const shared = sharedRateLimitConfig();
    return new UserRateLimiter(
      {
        write: { perSecond: writes.RATE_LIMIT_PER_SECOND, burst: writes.RATE_LIMIT_BURST },
        read: { perSecond: reads.RATE_LIMIT_READ_PER_SECOND, burst: reads.RATE_LIMIT_READ_BURST },
      },
      {
        counter: new DynamoSharedRateCounter(dynamoClient(), table),
        windowSeconds: shared.RATE_LIMIT_WINDOW_SECONDS,
        batch: shared.RATE_LIMIT_SHARED_BATCH,
      },
    );
  },
);

/**
 * Runs a request's own work while its shared-counter write (if any) is in flight, and answers only
 * once both are done: the write costs no sequential round trip, and nothing outlives the invocation.
 */
export async function whileCounting<T>(counting: Promise<void> | undefined, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } finally {
    await counting;
  }
}
