import { RateLimitedError } from '../domain/errors';

/**
 * A per-user token bucket held in memory by each function instance. API Gateway throttles per
 * stage and route, not per user; this bounds one user's money requests per instance, and the
 * stage throttle bounds the total (DESIGN.md, rate limits).
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

  /** Takes one token for `userId`, or throws RATE_LIMITED with the seconds until one is free. */
  take(userId: string): void {
    const now = this.nowMs();
    const bucket = this.buckets.get(userId) ?? { tokens: this.burst, updatedAtMs: now };
    const refilled = Math.min(this.burst, bucket.tokens + ((now - bucket.updatedAtMs) / 1000) * this.ratePerSecond);
    if (refilled < 1) {
      const waitSeconds = Math.max(1, Math.ceil((1 - refilled) / this.ratePerSecond));
      this.buckets.set(userId, { tokens: refilled, updatedAtMs: now });
      throw new RateLimitedError('Too many requests. Retry later with the same idempotency key.', { retryAfterSeconds: waitSeconds });
    }
    if (!this.buckets.has(userId) && this.buckets.size >= TokenBucketLimiter.MAX_TRACKED_USERS) {
      const oldest = this.buckets.keys().next();
      if (!oldest.done) this.buckets.delete(oldest.value);
    }
    this.buckets.delete(userId);
    this.buckets.set(userId, { tokens: refilled - 1, updatedAtMs: now });
  }
}
