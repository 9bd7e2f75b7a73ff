// The Redis store against a real redis-server of this test's own (tests/support/redisServer.ts):
// the limiter contract, stepped on a fake clock as against the memory store; then what only Redis
// has: its TIME clock shared by replicas, the keys it leaves, and how the connection ends each call
// (a reply, an error reply, unreachable) through script loss, a crash, and a path that goes silent.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createClient } from '@redis/client';
import { createLogger } from '@event-tracker/common/logger.ts';
import { systemClock } from '@event-tracker/common/clock.ts';
import { createApiMetrics } from '../src/apiMetrics.ts';
import { RedisConnection, luaScript, type ScriptOutcome } from '../src/redisConnection.ts';
import { RedisLimiter } from '../src/rateLimit/redisLimiter.ts';
import { RedisStore, SLIDING_LOG_SCRIPT } from '../src/rateLimit/redisStore.ts';
import type { RateLimiter } from '../src/rateLimit/types.ts';
import { RedisServer, redisServerMissing } from '../../tests/support/redisServer.ts';
import { TcpProxy } from '../../tests/support/tcpProxy.ts';
import { waitFor } from '../../tests/support/processes.ts';
import { fakeClock, type LogLine } from './helpers.ts';
import { limiterContract } from './limiterContract.ts';

const skip = redisServerMissing();
let server: RedisServer;
/** The contract's connection, and a plain client of the test's own for looking at keys. */
let shared: RedisConnection;
let admin: ReturnType<typeof createClient>;

function quietLogger(lines: LogLine[] = []) {
  return createLogger({}, { level: 'debug', write: (text) => lines.push(JSON.parse(text) as LogLine) });
}

function connect(url: string, options: { stallMs?: number; lines?: LogLine[] } = {}): RedisConnection {
  return new RedisConnection({ url, clock: systemClock, logger: quietLogger(options.lines), ...(options.stallMs === undefined ? {} : { stallMs: options.stallMs }) });
}

/** A prefix of the test's own, its keys deleted after the test. */
function prefixFor(t: TestContext): string {
  const prefix = `event-tracker-test:${randomUUID()}:`;
  t.after(async () => {
    for await (const keys of admin.scanIterator({ MATCH: `${prefix}*` })) if (keys.length > 0) await admin.del(keys);
  });
  return prefix;
}

before(async () => {
  if (skip) return;
  server = await RedisServer.start();
  shared = connect(server.url);
  admin = createClient({ url: server.url, RESP: 2 });
  admin.on('error', () => {});
  await admin.connect();
  await waitFor('the connection to be ready', () => shared.ready, 10_000);
});

after(async () => {
  if (skip) return;
  shared.close();
  admin.destroy();
  await server.stop();
});

/** The contract must be Redis's answers: a fallback here fails the test instead of hiding a bug. */
const NO_FALLBACK: RateLimiter = {
  hit: () => {
    throw new Error('the in-process fallback decided: Redis did not answer in time');
  },
  size: 0,
  evictions: 0,
};

limiterContract(
  'Redis',
  async (t, policy) => {
    const clock = fakeClock();
    const store = new RedisStore({ runner: shared, prefix: prefixFor(t), ...policy, now: clock.now });
    const limiter = new RedisLimiter({ store, fallback: NO_FALLBACK, timeoutMs: 2_000, clock, logger: quietLogger(), metrics: createApiMetrics() });
    return { limiter, clock };
  },
  { skip },
);

describe('the Redis store', { skip }, () => {
  test("decides on Redis's own clock (TIME), so two replicas share one window whatever their clocks say", async (t) => {
    const prefix = prefixFor(t);
    const [one, two] = [1, 2].map(() => new RedisStore({ runner: shared, prefix, maxRequests: 2, windowMs: 60_000 }));
    const outcomes = [await one!.hit('a'), await two!.hit('a'), await one!.hit('a')];
    assert.deepEqual(
      outcomes.map((outcome) => outcome.kind === 'decided' && [outcome.decision.allowed, outcome.decision.remaining]),
      [[true, 1], [true, 0], [false, 0]],
    );
    const refused = outcomes[2]!;
    assert.ok(refused.kind === 'decided' && refused.decision.resetMs > 55_000 && refused.decision.resetMs <= 60_000, JSON.stringify(refused));
  });

  test("two replicas' requests in the same microsecond are two entries", async (t) => {
    const prefix = prefixFor(t);
    const clock = fakeClock();
    const [one, two] = [1, 2].map(() => new RedisStore({ runner: shared, prefix, maxRequests: 50, windowMs: 60_000, now: clock.now }));
    for (const store of [one, two, one, two]) await store!.hit('a');
    assert.equal(await admin.zCard(`${prefix}a`), 4);
    assert.deepEqual(new Set((await admin.zRangeWithScores(`${prefix}a`, 0, -1)).map((entry) => entry.score)).size, 1, 'all four at one time');
  });

  test('keeps one sorted set per client under the prefix, refused requests not in it, expiring a window after its newest request', async (t) => {
    const prefix = prefixFor(t);
    const clock = fakeClock();
    const store = new RedisStore({ runner: shared, prefix, maxRequests: 3, windowMs: 10_000, now: clock.now });
    for (let i = 0; i < 5; i++) await store.hit('198.51.100.7');
    assert.deepEqual(await admin.keys(`${prefix}*`), [`${prefix}198.51.100.7`]);
    assert.equal(await admin.type(`${prefix}198.51.100.7`), 'zset');
    assert.equal(await admin.zCard(`${prefix}198.51.100.7`), 3, 'the two refused requests are not logged');
    const ttl = await admin.pTTL(`${prefix}198.51.100.7`);
    assert.ok(ttl > 9_000 && ttl <= 10_000, `PTTL ${ttl}`);
  });

  test('runs the script again when Redis has forgotten it (NOSCRIPT), and still decides in one call', async (t) => {
    const store = new RedisStore({ runner: shared, prefix: prefixFor(t), maxRequests: 5, windowMs: 60_000 });
    assert.equal((await store.hit('a')).kind, 'decided');
    await admin.scriptFlush();
    const outcome = await store.hit('a');
    assert.ok(outcome.kind === 'decided' && outcome.decision.remaining === 3, JSON.stringify(outcome));
    assert.deepEqual(await admin.scriptExists([SLIDING_LOG_SCRIPT.sha1]), [1], 'cached again');
  });

  test('an error reply (a key of another type) is an error outcome, not a throw', async (t) => {
    const prefix = prefixFor(t);
    await admin.set(`${prefix}a`, 'not a sorted set');
    const outcome = await new RedisStore({ runner: shared, prefix, maxRequests: 5, windowMs: 60_000 }).hit('a');
    assert.equal(outcome.kind, 'error');
    assert.match(outcome.kind === 'error' ? outcome.error.message : '', /WRONGTYPE/);
  });
});

// Bounded, so a connection that never recovers fails its test instead of hanging the run.
describe('the Redis connection', { skip, timeout: 20_000 }, () => {
  const PING = luaScript("return redis.call('PING')");
  const ping = (connection: RedisConnection): Promise<ScriptOutcome> => connection.run(PING, [], []);

  test('with nothing listening, a call ends unreachable at once instead of waiting for a connection', async (t) => {
    const gone = await RedisServer.start();
    await gone.stop();
    // The next connect attempt half a minute or more away (back-off with jitter): a call that waited
    // for a connection would take that long; one answered at once is far inside a tenth of it, even
    // on a busy machine.
    const WAITED = 60_000;
    const connection = new RedisConnection({ url: gone.url, clock: systemClock, logger: quietLogger(), retry: { baseMs: WAITED, maxMs: WAITED } });
    t.after(() => connection.close());
    const started = performance.now();
    const outcome = await ping(connection);
    assert.equal(outcome.kind, 'unreachable');
    assert.ok(performance.now() - started < WAITED / 10, 'answered without waiting');
  });

  test('Redis killed: calls end unreachable; restarted: the connection is back by itself, script and all', async (t) => {
    const own = await RedisServer.start();
    t.after(() => own.stop());
    const connection = connect(own.url);
    t.after(() => connection.close());
    await waitFor('ready', () => connection.ready, 10_000);
    assert.equal((await ping(connection)).kind, 'reply');

    await own.kill();
    const down = await ping(connection);
    assert.equal(down.kind, 'unreachable', JSON.stringify(down));
    assert.equal(connection.ready, false);

    await own.restart();
    await waitFor('the connection to come back', () => connection.ready, 10_000);
    // The restarted Redis has an empty script cache: EVALSHA gets NOSCRIPT, EVAL answers.
    assert.deepEqual(await ping(connection), { kind: 'reply', reply: 'PONG' });
  });

  test('a connection that stops answering is dropped after stallMs and made again', async (t) => {
    const proxy = await TcpProxy.start(server.url);
    t.after(() => proxy.close());
    const lines: LogLine[] = [];
    const connection = connect(proxy.urlFor(server.url), { stallMs: 300, lines });
    t.after(() => connection.close());
    await waitFor('ready', () => connection.ready, 10_000);

    proxy.freeze();
    const stuck = await ping(connection);
    assert.equal(stuck.kind, 'unreachable', 'the waiting call ends when the stalled connection is dropped');
    assert.equal(lines.filter((line) => line.msg.startsWith('redis connection answers nothing')).length, 1);

    proxy.restore();
    await waitFor('a new connection', () => connection.ready, 10_000);
    assert.equal((await ping(connection)).kind, 'reply');
  });

  test('a connection accepted but never through its handshake is dropped after stallMs and made again', async (t) => {
    const proxy = await TcpProxy.start(server.url);
    t.after(() => proxy.close());
    proxy.freeze();
    const lines: LogLine[] = [];
    const connection = connect(proxy.urlFor(server.url), { stallMs: 300, lines });
    t.after(() => connection.close());
    await waitFor('the watchdog', () => lines.some((line) => line.msg.startsWith('redis connection answers nothing')), 10_000);
    assert.equal(connection.ready, false);

    proxy.restore();
    await waitFor('a new connection', () => connection.ready, 10_000);
    assert.equal((await ping(connection)).kind, 'reply');
  });
});
