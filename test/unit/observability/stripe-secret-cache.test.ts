import { maxAgeCache } from '../../../shared/adapters/stripe-client';

/**
 * Issue 16: a rotated Stripe key reaches warm instances within the maximum age, without a
 * redeploy (the secret used to be read once per cold start and kept for the instance's life).
 */
const MAX_AGE_MS = 300_000;

function fixture(values: Array<string | Error>) {
  let clock = 0;
  let fetches = 0;
  const cache = maxAgeCache(
    async () => {
      const next = values[Math.min(fetches, values.length - 1)];
      fetches += 1;
      if (next instanceof Error) throw next;
      return next ?? '';
    },
    () => MAX_AGE_MS,
    () => clock,
  );
  return { cache, advance: (ms: number) => (clock += ms), fetches: () => fetches };
}

test('within the maximum age the value is read once, also by concurrent callers', async () => {
  const { cache, advance, fetches } = fixture(['sk_old', 'sk_new']);
  expect(await Promise.all([cache.get(), cache.get(), cache.get()])).toEqual(['sk_old', 'sk_old', 'sk_old']);
  advance(MAX_AGE_MS - 1);
  expect(await cache.get()).toBe('sk_old');
  expect(fetches()).toBe(1);
});

test('once the value is as old as the maximum age, the rotated value is read', async () => {
  const { cache, advance, fetches } = fixture(['sk_old', 'sk_new']);
  expect(await cache.get()).toBe('sk_old');
  advance(MAX_AGE_MS);
  expect(await cache.get()).toBe('sk_new');
  expect(fetches()).toBe(2);
});

test('a failed first read is not cached: the next call reads again', async () => {
  const { cache, fetches } = fixture([new Error('unreachable'), 'sk_live']);
  await expect(cache.get()).rejects.toThrow('unreachable');
  expect(await cache.get()).toBe('sk_live');
  expect(fetches()).toBe(2);
});

test('a failed refresh keeps the last value read, and the next call tries again', async () => {
  const { cache, advance, fetches } = fixture(['sk_old', new Error('throttled'), 'sk_new']);
  expect(await cache.get()).toBe('sk_old');
  advance(MAX_AGE_MS);
  expect(await cache.get()).toBe('sk_old');
  expect(await cache.get()).toBe('sk_new');
  expect(fetches()).toBe(3);
});
