// The rate limiter's contract: the answers every store must give, whatever keeps the logs.
// rateLimiter.test.ts runs it against the in-process store, redisStore.test.ts against a real
// Redis; both step a fake clock, so a window edge is exact to the millisecond.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { rateLimitHeaders, retryAfterSeconds } from '../src/rateLimit/headers.ts';
import type { RateLimiter } from '../src/rateLimit/types.ts';

export interface ContractLimiter {
  readonly limiter: RateLimiter;
  readonly clock: { advance(ms: number): void };
}

/** Builds a store with this policy (default 50 per 60 s) on a fake clock; cleans up in `t.after`. */
export type MakeLimiter = (t: TestContext, policy: { readonly maxRequests: number; readonly windowMs: number }) => Promise<ContractLimiter>;

export function limiterContract(store: string, make: MakeLimiter, options: { readonly skip?: string | false } = {}): void {
  const limiter = (t: TestContext, policy: { maxRequests?: number; windowMs?: number } = {}) => make(t, { maxRequests: 50, windowMs: 60_000, ...policy });

  async function hitTimes(instance: RateLimiter, key: string, times: number): Promise<boolean[]> {
    const results: boolean[] = [];
    for (let i = 0; i < times; i++) results.push((await instance.hit(key)).allowed);
    return results;
  }

  describe(`the rate limiter contract, ${store} store`, { skip: options.skip ?? false }, () => {
    test('allows 50 requests in the window and refuses the 51st', async (t) => {
      const { limiter: instance } = await limiter(t);
      const results = await hitTimes(instance, 'a', 51);
      assert.equal(results.filter(Boolean).length, 50);
      assert.equal(results[50], false);
    });

    test('counts remaining requests down to zero', async (t) => {
      const { limiter: instance } = await limiter(t, { maxRequests: 3 });
      const remaining: number[] = [];
      for (let i = 0; i < 4; i++) remaining.push((await instance.hit('a')).remaining);
      assert.deepEqual(remaining, [2, 1, 0, 0]);
    });

    test('keeps clients apart', async (t) => {
      const { limiter: instance } = await limiter(t, { maxRequests: 1 });
      assert.equal((await instance.hit('a')).allowed, true);
      assert.equal((await instance.hit('b')).allowed, true);
      assert.equal((await instance.hit('a')).allowed, false);
    });

    test('a request still counts 1 ms before the window has passed and is gone exactly at its end', async (t) => {
      const { limiter: instance, clock } = await limiter(t, { maxRequests: 1, windowMs: 1_000 });
      await instance.hit('a');
      clock.advance(999);
      assert.equal((await instance.hit('a')).allowed, false);
      clock.advance(1);
      assert.equal((await instance.hit('a')).allowed, true);
    });

    test('slides: old requests leave one by one instead of the whole window resetting', async (t) => {
      const { limiter: instance, clock } = await limiter(t, { maxRequests: 2, windowMs: 1_000 });
      await instance.hit('a');
      clock.advance(600);
      await instance.hit('a');
      clock.advance(400);
      assert.equal((await instance.hit('a')).allowed, true, 'the first request has left');
      assert.equal((await instance.hit('a')).allowed, false, 'the second one is still inside');
    });

    test('does not log refused requests, so a client that keeps retrying is let back in on time', async (t) => {
      const { limiter: instance, clock } = await limiter(t, { maxRequests: 1, windowMs: 1_000 });
      await instance.hit('a');
      for (let i = 0; i < 9; i++) {
        clock.advance(100);
        assert.equal((await instance.hit('a')).allowed, false);
      }
      clock.advance(100);
      assert.equal((await instance.hit('a')).allowed, true);
    });

    test('Retry-After is whole seconds until the oldest request leaves, and a retry after exactly that succeeds', async (t) => {
      const { limiter: instance, clock } = await limiter(t, { maxRequests: 2, windowMs: 60_000 });
      await instance.hit('a');
      clock.advance(10_500);
      await instance.hit('a');
      clock.advance(1_000);
      const refused = await instance.hit('a');
      assert.equal(refused.allowed, false);
      assert.equal(refused.resetMs, 48_500);
      assert.equal(retryAfterSeconds(refused), 49);
      clock.advance(refused.resetMs - 1);
      assert.equal((await instance.hit('a')).allowed, false, 'one millisecond before the oldest request leaves');
      clock.advance(retryAfterSeconds(refused) * 1000 - (refused.resetMs - 1));
      assert.equal((await instance.hit('a')).allowed, true, 'exactly Retry-After seconds after the refusal');
    });

    test('Retry-After is at least 1 s even when the slot frees within the same second', async (t) => {
      const { limiter: instance, clock } = await limiter(t, { maxRequests: 1, windowMs: 1_000 });
      await instance.hit('a');
      clock.advance(999);
      const refused = await instance.hit('a');
      assert.equal(refused.resetMs, 1);
      assert.equal(retryAfterSeconds(refused), 1);
    });

    test('answers the same window after window: a full log empties and fills again', async (t) => {
      const { limiter: instance, clock } = await limiter(t, { maxRequests: 5, windowMs: 1_000 });
      for (let round = 0; round < 4; round++) {
        assert.deepEqual(await hitTimes(instance, 'a', 6), [true, true, true, true, true, false]);
        clock.advance(1_000);
      }
    });

    test('RateLimit-* headers state limit, remaining, reset in whole seconds and the policy', async (t) => {
      const { limiter: instance, clock } = await limiter(t);
      assert.deepEqual(rateLimitHeaders(await instance.hit('a')), {
        'RateLimit-Limit': '50',
        'RateLimit-Remaining': '49',
        'RateLimit-Reset': '60',
        'RateLimit-Policy': '50;w=60',
      });
      clock.advance(1_500);
      assert.deepEqual(rateLimitHeaders(await instance.hit('a')), {
        'RateLimit-Limit': '50',
        'RateLimit-Remaining': '48',
        'RateLimit-Reset': '59',
        'RateLimit-Policy': '50;w=60',
      });
    });
  });
}
