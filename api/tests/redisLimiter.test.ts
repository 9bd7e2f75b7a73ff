// RATE_LIMIT_STORE=redis when Redis fails: every request still gets an answer from the in-process
// limiter (never a 5xx), each switch is logged once, fallbacks are counted, readiness stays 200 with
// Redis shown as information, and the shared limit comes back by itself. Redis is played by
// FakeSharedStore (the ways redisStore.test.ts shows the real one failing); timeouts use mock timers.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@event-tracker/common/logger.ts';
import { createApiMetrics } from '../src/apiMetrics.ts';
import { RedisLimiter } from '../src/rateLimit/redisLimiter.ts';
import { SlidingLogLimiter } from '../src/rateLimit/slidingLog.ts';
import { FakeSharedStore } from './fakeSharedStore.ts';
import { VALID_EVENT, fakeClock, postJson, startApp, type LogLine } from './helpers.ts';

const POLICY = { maxRequests: 2, windowMs: 60_000 };
const TIMEOUT_MS = 50;

function sharedLimiter() {
  const clock = fakeClock();
  const store = new FakeSharedStore(POLICY, clock.now);
  const fallback = new SlidingLogLimiter({ ...POLICY, maxKeys: 1_000, now: clock.now });
  const lines: LogLine[] = [];
  const logger = createLogger({}, { write: (text) => lines.push(JSON.parse(text) as LogLine) });
  const metrics = createApiMetrics();
  const limiter = new RedisLimiter({ store, fallback, timeoutMs: TIMEOUT_MS, clock, logger, metrics });
  const fallbacks = (reason: string) => metrics.rateLimitFallbacks.get({ reason });
  const logged = (start: string) => lines.filter((line) => line.msg.startsWith(start));
  return { limiter, store, fallback, clock, fallbacks, logged };
}

/** Whether `promise` has settled once pending callbacks have run (one turn of the event loop). */
function settled(promise: Promise<unknown>): Promise<boolean> {
  return Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => setImmediate(resolve, false))]);
}

const allowed = async (limiter: RedisLimiter, key: string, times: number): Promise<boolean[]> => {
  const results: boolean[] = [];
  for (let i = 0; i < times; i++) results.push((await limiter.hit(key)).allowed);
  return results;
};

describe('RedisLimiter', () => {
  test('while Redis answers, Redis decides every request and the in-process limiter is never asked', async () => {
    const { limiter, store, fallback, fallbacks } = sharedLimiter();
    assert.deepEqual(await allowed(limiter, 'a', 3), [true, true, false]);
    assert.equal(store.asked.length, 3);
    assert.equal(fallback.size, 0);
    assert.equal(fallbacks('unreachable') + fallbacks('error') + fallbacks('timeout') + fallbacks('probing'), 0);
    assert.equal(limiter.storeUp, true);
  });

  test('Redis unreachable: each request is decided in process at once and counted, and the switch is logged once', async () => {
    const { limiter, store, fallback, fallbacks, logged } = sharedLimiter();
    store.mode = 'unreachable';
    assert.deepEqual(await allowed(limiter, 'a', 3), [true, true, false], 'the in-process limit holds');
    assert.equal(fallback.size, 1);
    assert.equal(fallbacks('unreachable'), 3);
    const [down, ...more] = logged('rate limit store unavailable');
    assert.deepEqual(more, [], 'logged once');
    assert.equal(down!.level, 40);
    assert.equal(down!.reason, 'unreachable');
    assert.equal((down!.err as { message: string }).message, 'The client is offline');
    assert.equal(limiter.storeUp, false);
  });

  test('an error reply falls back the same way, and the log line carries the error', async () => {
    const { limiter, store, fallbacks, logged } = sharedLimiter();
    store.mode = 'error';
    assert.equal((await limiter.hit('a')).allowed, true);
    assert.equal(fallbacks('error'), 1);
    assert.match((logged('rate limit store unavailable')[0]!.err as { message: string }).message, /^OOM/);
  });

  test('a request Redis does not answer is decided in process after exactly RATE_LIMIT_REDIS_TIMEOUT_MS', async (t: TestContext) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { limiter, store, fallbacks, logged } = sharedLimiter();
    store.mode = 'silent';
    const decision = limiter.hit('a');
    t.mock.timers.tick(TIMEOUT_MS - 1);
    assert.equal(await settled(decision), false, '1 ms before the timeout');
    t.mock.timers.tick(1);
    assert.equal(await settled(decision), true, 'at the timeout');
    assert.equal((await decision).allowed, true);
    assert.equal(fallbacks('timeout'), 1);
    assert.equal(logged('rate limit store unavailable')[0]!.reason, 'timeout');
  });

  test('while Redis is down one request at a time asks it, and the others are decided without waiting', async (t: TestContext) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { limiter, store, fallbacks } = sharedLimiter();
    store.mode = 'silent';
    const first = limiter.hit('a');
    t.mock.timers.tick(TIMEOUT_MS);
    await first;
    // The first request's question is still unanswered: nobody else asks, nobody waits.
    for (const key of ['a', 'b', 'c']) assert.equal(await settled(limiter.hit(key)), true, key);
    assert.equal(store.asked.length, 1);
    assert.equal(fallbacks('probing'), 3);
  });

  test('an answer that comes after the timeout is not taken as recovery; the next request asks Redis again', async (t: TestContext) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { limiter, store, logged } = sharedLimiter();
    store.mode = 'silent';
    const first = limiter.hit('a');
    t.mock.timers.tick(TIMEOUT_MS);
    await first;
    store.answerSilent();
    await settled(first);
    assert.equal(limiter.storeUp, false);
    assert.deepEqual(logged('rate limit store answering again'), []);
    store.mode = 'answer';
    await limiter.hit('a');
    assert.equal(store.asked.length, 2, 'asked again');
    assert.equal(limiter.storeUp, true);
  });

  test('the first answer in time after an outage switches back, logged once, and Redis decides again', async () => {
    const { limiter, store, fallback, clock, logged } = sharedLimiter();
    store.mode = 'unreachable';
    await limiter.hit('a');
    clock.advance(7_000);
    store.mode = 'answer';
    assert.deepEqual(await allowed(limiter, 'a', 3), [true, true, false], "Redis's log: the request decided in process is not in it");
    assert.deepEqual(
      logged('rate limit store answering again').map((line) => line.downMs),
      [7_000],
    );
    assert.equal(fallback.size, 1, 'the fallback decided only during the outage');
    assert.equal(limiter.storeUp, true);
  });
});

describe('the app with the shared limit', () => {
  const env = { RATE_LIMIT_MAX_REQUESTS: String(POLICY.maxRequests), RATE_LIMIT_WINDOW_MS: String(POLICY.windowMs) };

  test('Redis unreachable: ingestion answers 202, then 429 with an exact Retry-After, from the in-process limit; never a 5xx', async (t) => {
    const store = new FakeSharedStore(POLICY, fakeClock().now);
    store.mode = 'unreachable';
    const app = await startApp(t, { env, sharedStore: store });
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await postJson(`${app.url}/api/v1/activities`, VALID_EVENT));
    assert.deepEqual(
      answers.map((answer) => answer.status),
      [202, 202, 429],
    );
    assert.equal(answers[2]!.headers.get('retry-after'), '60');
    assert.equal(answers[2]!.headers.get('ratelimit-remaining'), '0');
    const metrics = (await (await fetch(`${app.url}/metrics`)).text()).split('\n');
    assert.ok(metrics.includes('api_rate_limit_fallbacks_total{reason="unreachable"} 3'), metrics.join('\n'));
    assert.ok(metrics.includes('api_rate_limit_redis_up 0'));
  });

  test('/health stays 200 with Redis down under info, and shows it up again once Redis answers', async (t) => {
    const store = new FakeSharedStore(POLICY, fakeClock().now);
    store.mode = 'unreachable';
    const app = await startApp(t, { env, sharedStore: store });
    for (const path of ['/health', '/health/ready']) {
      const response = await fetch(`${app.url}${path}`);
      assert.equal(response.status, 200, path);
      assert.deepEqual(await response.json(), { status: 'ok', checks: { rabbitmq: 'up' }, info: { redis: 'down' } });
    }
    store.mode = 'answer';
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202);
    assert.deepEqual(await (await fetch(`${app.url}/health`)).json(), { status: 'ok', checks: { rabbitmq: 'up' }, info: { redis: 'up' } });
    app.publisher.ready = false;
    const unready = await fetch(`${app.url}/health`);
    assert.equal(unready.status, 503, 'the broker still decides readiness');
    assert.deepEqual(await unready.json(), { status: 'unavailable', checks: { rabbitmq: 'down' }, info: { redis: 'up' } });
  });

  test('with the memory store /health has no info: there is nothing it runs without', async (t) => {
    const app = await startApp(t);
    assert.deepEqual(await (await fetch(`${app.url}/health`)).json(), { status: 'ok', checks: { rabbitmq: 'up' } });
  });
});
