// The in-process store: the contract every store keeps (limiterContract.ts), then what only it has.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SlidingLogLimiter, SWEEP_CHUNK_KEYS, startSweeping } from '../src/rateLimit/slidingLog.ts';
import { createApiMetrics } from '../src/apiMetrics.ts';
import { VALID_EVENT, fakeClock, postJson, startApp } from './helpers.ts';
import { limiterContract } from './limiterContract.ts';

function limiter(options: { maxRequests?: number; windowMs?: number; maxKeys?: number; shards?: number; start?: number } = {}) {
  const { start, ...policy } = options;
  const clock = fakeClock(start);
  const instance = new SlidingLogLimiter({ maxRequests: 50, windowMs: 60_000, maxKeys: 1_000, now: clock.now, ...policy });
  return { limiter: instance, clock };
}

limiterContract('in-process', async (_t, policy) => {
  const clock = fakeClock();
  return { limiter: new SlidingLogLimiter({ ...policy, maxKeys: 1_000, now: clock.now }), clock };
});

describe('SlidingLogLimiter: what only the in-process store has (eviction, sweeping)', () => {
  test('evicts the least recently used client when maxKeys is reached (one shard: exact LRU)', () => {
    const { limiter: instance } = limiter({ maxRequests: 1, maxKeys: 2, shards: 1 });
    instance.hit('a');
    instance.hit('b');
    instance.hit('a'); // refused, but touches a: b is now the least recently used
    instance.hit('c');
    assert.equal(instance.size, 2);
    assert.equal(instance.hit('a').allowed, false, 'a is still tracked');
    assert.equal(instance.hit('b').allowed, true, 'b was forgotten');
  });

  test('with many shards, holds at most maxKeys and evicts from the newcomer\'s shard first', () => {
    const { limiter: instance } = limiter({ maxRequests: 1, maxKeys: 100 });
    for (let i = 0; i < 1_000; i++) instance.hit(`10.0.${i >> 8}.${i & 255}`);
    assert.equal(instance.size, 100);
    assert.equal(instance.hit('10.0.3.231').allowed, false, 'the most recent client is still tracked');
    assert.equal(instance.hit('10.0.0.0').allowed, true, 'the first client was forgotten');
  });

  test('counts an eviction of a client whose newest request is still inside the window', () => {
    const { limiter: instance, clock } = limiter({ windowMs: 1_000, maxKeys: 2, shards: 1 });
    instance.hit('a');
    instance.hit('b');
    assert.equal(instance.evictions, 0);
    clock.advance(999);
    instance.hit('c'); // a's request is 999 ms old: inside the window
    assert.equal(instance.evictions, 1);
    instance.hit('d'); // b's too
    assert.equal(instance.evictions, 2);
  });

  test('does not count evicting a client whose window has passed, nor sweeping one', () => {
    const { limiter: instance, clock } = limiter({ windowMs: 1_000, maxKeys: 2, shards: 1 });
    instance.hit('a');
    instance.hit('b');
    clock.advance(1_000);
    instance.hit('c'); // a's only request is exactly 1 000 ms old: it has left the window
    assert.equal(instance.size, 2);
    assert.equal(instance.evictions, 0);
    clock.advance(1_000);
    assert.equal(instance.sweep(), true);
    assert.equal(instance.size, 0);
    assert.equal(instance.evictions, 0);
  });

  test('counts an eviction by its newest request even when older ones have left the window', () => {
    const { limiter: instance, clock } = limiter({ windowMs: 1_000, maxKeys: 1, shards: 1 });
    instance.hit('a');
    clock.advance(900);
    instance.hit('a');
    clock.advance(500); // the first request has left, the second is 500 ms old
    instance.hit('b');
    assert.equal(instance.evictions, 1);
  });

  test('with many shards, counts the evictions that keep it at maxKeys', () => {
    const { limiter: instance } = limiter({ maxKeys: 100 });
    for (let i = 0; i < 1_000; i++) instance.hit(`10.0.${i >> 8}.${i & 255}`);
    assert.equal(instance.evictions, 900);
  });

  test('api_rate_limiter_evictions_total renders the limiter\'s count as a counter', () => {
    const { limiter: instance } = limiter({ maxKeys: 1, shards: 1 });
    const metrics = createApiMetrics();
    metrics.limiterEvictions.track(() => instance.evictions);
    instance.hit('a');
    instance.hit('b');
    instance.hit('c');
    const lines = metrics.registry.render().split('\n');
    assert.ok(lines.includes('# TYPE api_rate_limiter_evictions_total counter'));
    assert.ok(lines.includes('api_rate_limiter_evictions_total 2'), lines.join('\n'));
  });

  test('sweep forgets only clients whose newest request has left the window', () => {
    const { limiter: instance, clock } = limiter({ windowMs: 1_000 });
    instance.hit('old');
    clock.advance(500);
    instance.hit('recent');
    clock.advance(500);
    assert.equal(instance.sweep(), true);
    assert.equal(instance.size, 1);
    assert.equal(instance.hit('recent').remaining, 48, 'recent kept its log');
  });

  test('sweeps in chunks: each call looks at no more than its budget and resumes where it stopped', () => {
    const { limiter: instance, clock } = limiter({ windowMs: 1_000, maxKeys: 100 });
    for (let i = 0; i < 25; i++) instance.hit(`k${i}`);
    clock.advance(1_000);
    assert.equal(instance.sweep(10), false);
    assert.equal(instance.size, 15);
    assert.equal(instance.sweep(10), false);
    assert.equal(instance.size, 5);
    assert.equal(instance.sweep(10), true);
    assert.equal(instance.size, 0);
  });

  test('a key touched during a chunked sweep is not lost', () => {
    const { limiter: instance, clock } = limiter({ windowMs: 1_000 });
    for (let i = 0; i < 4; i++) instance.hit(`k${i}`);
    clock.advance(1_000);
    instance.sweep(1);
    instance.hit('k3');
    while (!instance.sweep(1));
    assert.equal(instance.size, 1);
    assert.equal(instance.hit('k3').remaining, 48);
  });
});

describe('SlidingLogLimiter: how it stores the times (32-bit milliseconds, logs that grow into shared rows)', () => {
  test('keeps ages exact across the point where its 32-bit times wrap around', () => {
    const { limiter: instance, clock } = limiter({ maxRequests: 2, windowMs: 1_000, start: 2 ** 32 - 500 });
    instance.hit('a');
    clock.advance(600); // now 2^32 + 100: stored as 100, after the first request's 2^32 - 500
    assert.equal(instance.hit('a').resetMs, 400, 'the first request is 600 ms old');
    assert.equal(instance.hit('a').allowed, false);
    clock.advance(399);
    assert.equal(instance.hit('a').allowed, false, '1 ms before the first request leaves');
    clock.advance(1);
    assert.equal(instance.hit('a').allowed, true);
    clock.advance(1_000);
    assert.equal(instance.sweep(), true);
    assert.equal(instance.size, 0, 'the sweep sees the wrapped times as old');
  });

  test('a sub-millisecond clock counts whole milliseconds, and a retry after resetMs succeeds', () => {
    const { limiter: instance, clock } = limiter({ maxRequests: 1, windowMs: 1_000, start: 0.7 });
    instance.hit('a');
    clock.advance(500.6);
    const refused = instance.hit('a');
    assert.equal(refused.resetMs, 499);
    clock.advance(refused.resetMs - 1);
    assert.equal(instance.hit('a').allowed, false);
    clock.advance(1);
    assert.equal(instance.hit('a').allowed, true);
  });

  test('a log keeps its times oldest first while it grows to the limit, even when its ring had wrapped', () => {
    const { limiter: instance, clock } = limiter({ maxRequests: 5, windowMs: 1_000, start: 0 });
    instance.hit('a');
    clock.advance(10);
    instance.hit('a'); // two slots, both used
    clock.advance(990);
    instance.hit('a'); // the first request leaves; the new one wraps round to the first slot
    const remaining = [instance.hit('a').remaining]; // grows to four slots
    clock.advance(1);
    remaining.push(instance.hit('a').remaining, instance.hit('a').remaining); // grows to the limit
    assert.deepEqual(remaining, [2, 1, 0]);
    const refused = instance.hit('a');
    assert.equal(refused.allowed, false);
    assert.equal(refused.resetMs, 9, 'the oldest is still the request at 10 ms');
    clock.advance(9);
    assert.equal(instance.hit('a').allowed, true, 'it leaves at 1 010 ms');
    assert.equal(instance.hit('a').resetMs, 990, 'and the next oldest is from 1 000 ms');
  });

  test('a full log given up by the sweep is reused by the next client that fills one, apart from those in use', () => {
    const { limiter: instance, clock } = limiter({ maxRequests: 3, windowMs: 1_000, start: 0 });
    instance.hit('a');
    instance.hit('a');
    clock.advance(1);
    instance.hit('a'); // a's log has grown to the limit
    clock.advance(999);
    instance.hit('a'); // two requests leave: a's oldest is no longer in the first slot
    clock.advance(500);
    for (let i = 0; i < 3; i++) instance.hit('b');
    clock.advance(500);
    assert.equal(instance.sweep(), true);
    assert.equal(instance.size, 1, 'a was forgotten, b kept');
    assert.deepEqual([1, 2, 3].map(() => instance.hit('c').remaining), [2, 1, 0]);
    clock.advance(1);
    assert.deepEqual([1, 2, 3].map(() => instance.hit('a').remaining), [2, 1, 0], 'a starts again from nothing');
    for (const [client, resetMs] of [['c', 999], ['b', 499]] as const) {
      const { allowed, resetMs: measured } = instance.hit(client);
      assert.deepEqual({ allowed, resetMs: measured }, { allowed: false, resetMs }, `${client} keeps its own times`);
    }
  });

  test('a full log given up by eviction is reused without mixing clients', () => {
    const { limiter: instance, clock } = limiter({ maxRequests: 3, windowMs: 1_000, maxKeys: 1, shards: 1, start: 0 });
    for (let i = 0; i < 3; i++) instance.hit('a');
    clock.advance(100);
    assert.deepEqual([1, 2, 3, 4].map(() => instance.hit('b').allowed), [true, true, true, false]);
    assert.equal(instance.evictions, 1);
    assert.equal(instance.hit('b').resetMs, 1_000);
    assert.equal(instance.hit('a').remaining, 2, 'evicting b, a starts again from nothing');
  });

  test('refuses a window too long for its 32-bit times (over 2^30 ms, about 12 days)', () => {
    assert.throws(() => limiter({ windowMs: 2 ** 30 + 1 }), RangeError);
    assert.equal(limiter({ windowMs: 2 ** 30 }).limiter.hit('a').resetMs, 2 ** 30);
  });
});

describe('startSweeping', () => {
  test('sweeps the whole map on every interval, yielding to the event loop between chunks', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
    const { limiter: instance, clock } = limiter({ windowMs: 1_000, maxKeys: 10 * SWEEP_CHUNK_KEYS });
    for (let i = 0; i < 2 * SWEEP_CHUNK_KEYS + 500; i++) instance.hit(`k${i}`);
    clock.advance(1_000);
    const stop = startSweeping(instance, 5_000);
    t.after(stop);
    t.mock.timers.tick(5_000);
    assert.equal(instance.size, SWEEP_CHUNK_KEYS + 500, 'the first chunk ran on the interval');
    await nextTurn();
    assert.equal(instance.size, 500, 'the second chunk ran one turn later');
    await nextTurn();
    assert.equal(instance.size, 0);
  });
});

describe('the app', () => {
  test('reports on /metrics each client evicted while still inside its window', async (t) => {
    const app = await startApp(t, { env: { RATE_LIMIT_MAX_KEYS: '1', TRUST_PROXY: '1' } });
    for (const client of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) {
      assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT, { 'x-forwarded-for': client })).status, 202);
    }
    const lines = (await (await fetch(`${app.url}/metrics`)).text()).split('\n');
    assert.ok(lines.includes('api_rate_limiter_evictions_total 2'), lines.join('\n'));
  });
});
