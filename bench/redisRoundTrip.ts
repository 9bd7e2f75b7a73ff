// What one shared-limit decision costs: the sliding-log script through the API's own connection
// code (redisConnection.ts, redisStore.ts) against a redis-server of its own on loopback, one call
// at a time and with many in flight, beside a script that only returns (the round trip alone);
// then what a client's log costs in Redis's memory, seen once and with a full window of 50.
// Usage: node --import tsx bench/redisRoundTrip.ts   (BENCH_CALLS, default 20000; BENCH_KEYS, default 1000)
import { createClient } from '@redis/client';
import { createLogger } from '@event-tracker/common/logger.ts';
import { systemClock } from '@event-tracker/common/clock.ts';
import { RedisConnection, luaScript } from '../api/src/redisConnection.ts';
import { RedisStore } from '../api/src/rateLimit/redisStore.ts';
import { RedisServer } from '../tests/support/redisServer.ts';
import { table } from './support.ts';

const calls = Number(process.env.BENCH_CALLS ?? 20_000);
const keys = Number(process.env.BENCH_KEYS ?? 1_000);
const RETURN = luaScript('return 1');

const server = await RedisServer.start();
const connection = new RedisConnection({ url: server.url, clock: systemClock, logger: createLogger({}, { level: 'fatal' }) });
while (!connection.ready) await new Promise((resolve) => setTimeout(resolve, 10));
const store = new RedisStore({ runner: connection, prefix: 'bench:', maxRequests: 50, windowMs: 60_000 });

const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;

/** `calls` calls, `parallel` in flight at a time; per-call latency and calls per second. */
async function measure(call: (i: number) => Promise<unknown>, parallel: number): Promise<Record<string, number>> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < calls) {
        const i = next++;
        const at = performance.now();
        await call(i);
        latencies.push(performance.now() - at);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { 'calls/s': calls / seconds, 'p50 ms': quantile(latencies, 0.5), 'p99 ms': quantile(latencies, 0.99), 'max ms': latencies.at(-1)! };
}

const client = (i: number) => `10.0.${(i % keys) >> 8}.${i % keys & 255}`;
const rows: Record<string, string | number>[] = [];
const memory: Record<string, string | number>[] = [];
const admin = createClient({ url: server.url, RESP: 2 });
try {
  for (const parallel of [1, 10, 100]) {
    rows.push({ call: 'script that returns 1', 'in flight': parallel, ...(await measure(() => connection.run(RETURN, [], []), parallel)) });
    // Most calls allowed (50 per key per window over `keys` keys), as for real clients.
    rows.push({ call: 'sliding-log script', 'in flight': parallel, ...(await measure((i) => store.hit(client(i)), parallel)) });
  }
  await admin.connect();
  const used = async () => Number(/used_memory:(\d+)/.exec(String(await admin.sendCommand(['INFO', 'memory'])))![1]);
  for (const entries of [1, 50]) {
    await admin.flushAll();
    const before = await used();
    let next = 0;
    await Promise.all(Array.from({ length: 50 }, async () => {
      while (next < keys * entries) await store.hit(client(next++));
    }));
    memory.push({ 'entries per client': entries, 'bytes per client (used_memory)': (await used() - before) / keys, 'MEMORY USAGE of one key': Number(await admin.sendCommand(['MEMORY', 'USAGE', `bench:${client(0)}`])) });
  }
} finally {
  admin.destroy();
  connection.close();
  await server.stop();
}
table(`Redis round trip from the API's connection code, ${calls} calls per row (redis-server on loopback)`, rows);
table(`Redis memory per client, ${keys} clients (keys of the form bench:10.0.x.y)`, memory);
