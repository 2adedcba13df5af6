import { RateLimitedError } from '../../../shared/domain/errors';
import { TokenBucketLimiter } from '../../../shared/http/rate-limit';

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
