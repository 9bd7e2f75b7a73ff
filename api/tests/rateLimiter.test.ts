// The in-process store: the contract every store keeps (limiterContract.ts), then what only it has.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SlidingLogLimiter, SWEEP_CHUNK_KEYS, startSweeping } from '../src/middlewares/rateLimiter.ts';
import { createApiMetrics } from '../src/apiMetrics.ts';
import { VALID_EVENT, fakeClock, postJson, startApp } from './helpers.ts';
import { limiterContract } from './limiterContract.ts';

function limiter(options: { maxRequests?: number; windowMs?: number; maxKeys?: number; shards?: number } = {}) {
  const clock = fakeClock();
  const instance = new SlidingLogLimiter({ maxRequests: 50, windowMs: 60_000, maxKeys: 1_000, now: clock.now, ...options });
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
