import { SHARD_FANOUT_READ_COST } from '../../../infra/routes';
import { logger } from '../../../shared/logger';
import { RateLimitedError } from '../../../shared/domain/errors';
import type { RateWindow, SharedRateCounter } from '../../../shared/adapters/dynamo/rate-counter';
import { TokenBucketLimiter, UserRateLimiter, type RequestClass } from '../../../shared/http/rate-limit';

describe('per-user token bucket', () => {
  it('allows the burst, then refuses with Retry-After, then refills', () => {
    let now = 0;
    const limiter = new TokenBucketLimiter(50, 200, () => now);
    for (let i = 0; i < 200; i += 1) limiter.take('u1');
    let refused: unknown;
    try {
      limiter.take('u1');
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(RateLimitedError);
    expect((refused as RateLimitedError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(() => limiter.take('u2')).not.toThrow();
    now += 1000;
    for (let i = 0; i < 50; i += 1) limiter.take('u1');
    expect(() => limiter.take('u1')).toThrow(RateLimitedError);
  });
});

describe('the per-user limit with its cross-instance ceiling', () => {
  /** The shared counter's semantics (DynamoSharedRateCounter), in memory: several instances share one. */
  class MemoryCounter implements SharedRateCounter {
    readonly totals = new Map<string, number>();
    writes = 0;
    async add(window: RateWindow, count: number, ceiling: number): Promise<number | undefined> {
      this.writes += 1;
      const key = `${window.userId}|${window.requestClass}|${window.window}`;
      const total = this.totals.get(key) ?? 0;
      if (total >= ceiling) return undefined;
      this.totals.set(key, total + count);
      return total + count;
    }
  }
  const limits = { write: { perSecond: 1, burst: 20 }, read: { perSecond: 2, burst: 40 } };

  async function outcome(limiter: UserRateLimiter, userId: string, requestClass: RequestClass): Promise<'ok' | number> {
    try {
      await limiter.take(userId, requestClass);
      return 'ok';
    } catch (error) {
      if (error instanceof RateLimitedError) return error.retryAfterSeconds ?? -1;
      throw error;
    }
  }

  it('reads and writes have buckets of their own, reads the larger', async () => {
    const limiter = new UserRateLimiter(limits, undefined, () => 0);
    for (let i = 0; i < 20; i += 1) expect(await outcome(limiter, 'u', 'write')).toBe('ok');
    expect(await outcome(limiter, 'u', 'write')).toEqual(expect.any(Number));
    for (let i = 0; i < 40; i += 1) expect(await outcome(limiter, 'u', 'read')).toBe('ok');
    expect(await outcome(limiter, 'u', 'read')).toEqual(expect.any(Number));
  });

  it('a read that queries every creator shard weighs SHARD_FANOUT_READ_COST against the read bucket', async () => {
    const limiter = new UserRateLimiter(limits, undefined, () => 0);
    const fanouts = limits.read.burst / SHARD_FANOUT_READ_COST;
    for (let i = 0; i < fanouts; i += 1) await limiter.take('u', 'read', SHARD_FANOUT_READ_COST);
    expect(await outcome(limiter, 'u', 'read')).toEqual(expect.any(Number));
  });

  it('two instances together take no more than one instance’s window (batch 1: exact)', async () => {
    let now = 1_000_000;
    const counter = new MemoryCounter();
    const shared = { counter, windowSeconds: 10, batch: 1 };
    const [a, b] = [new UserRateLimiter(limits, shared, () => now), new UserRateLimiter(limits, shared, () => now)];
    expect(a.ceiling('write')).toBe(30);
    for (let i = 0; i < 20; i += 1) expect(await outcome(a, 'u', 'write')).toBe('ok');
    for (let i = 0; i < 10; i += 1) expect(await outcome(b, 'u', 'write')).toBe('ok');
    const refused = await outcome(b, 'u', 'write');
    expect(refused).toBeGreaterThanOrEqual(1);
    expect(refused).toBeLessThanOrEqual(10);
    // Another user, and the same user's reads, are not affected.
    expect(await outcome(b, 'v', 'write')).toBe('ok');
    expect(await outcome(b, 'u', 'read')).toBe('ok');
    // The next window starts from zero (the buckets have refilled by then too).
    now += 10_000;
    expect(await outcome(b, 'u', 'write')).toBe('ok');
  });

  it('with a batch, a user costs one counter write per batch and passes the ceiling by at most instances x (batch - 1)', async () => {
    const now = 2_000_000;
    const counter = new MemoryCounter();
    const shared = { counter, windowSeconds: 10, batch: 5 };
    const instances = [0, 1, 2].map(
      () => new UserRateLimiter({ write: { perSecond: 1, burst: 1000 }, read: limits.read }, shared, () => now),
    );
    const ceiling = instances[0]!.ceiling('write');
    let taken = 0;
    for (let round = 0; round < 2000; round += 1) {
      if ((await outcome(instances[round % 3]!, 'u', 'write')) === 'ok') taken += 1;
    }
    expect(taken).toBeGreaterThanOrEqual(ceiling);
    expect(taken).toBeLessThanOrEqual(ceiling + 3 * (5 - 1) + 3 * 5);
    const light = new MemoryCounter();
    const lightLimiter = new UserRateLimiter(limits, { counter: light, windowSeconds: 10, batch: 5 }, () => now);
    for (let i = 0; i < 4; i += 1) await lightLimiter.take('light', 'read');
    expect(light.writes).toBe(0);
  });

  it('lets requests through on the bucket alone when the shared counter fails', async () => {
    const warned = jest.spyOn(logger, 'warn').mockImplementation(() => undefined);
    const broken: SharedRateCounter = { add: async () => Promise.reject(new Error('throttled')) };
    const limiter = new UserRateLimiter(limits, { counter: broken, windowSeconds: 10, batch: 1 }, () => 0);
    for (let i = 0; i < 20; i += 1) expect(await outcome(limiter, 'u', 'write')).toBe('ok');
    expect(await outcome(limiter, 'u', 'write')).toEqual(expect.any(Number));
    expect(warned).toHaveBeenCalledTimes(20);
    warned.mockRestore();
  });
});
