// The API side by side with what a user would otherwise pick: the same POST at the same
// concurrency to a bare node:http + confirm baseline, to Fastify (bare, and like for like: with a
// rate limiter and a per-status counter) and Express (bench/peers), and to
// the API on each runtime, with the Redis store and on the batch route. Every server publishes
// persistent messages with confirms to a quorum queue of the API's arguments on the same broker.
// Runs alternate, so drift on a shared machine hits every server alike; each figure is a median.
// CPU per request is the server process's user + system time over the run, divided by requests.
// Usage: RABBITMQ_URL=... node --import tsx bench/sideBySide.ts   (BENCH_SECONDS, BENCH_RUNS, BENCH_CONNECTIONS)
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisServer } from '../tests/support/redisServer.ts';
import { clearQueues, cpuMicros, deleteExchanges, declareApiQueue, median, requireEnv, startCommand, startReady, stopService, table, wrk, type Runtime, type RunningService, type WrkResult } from './support.ts';
import { root, runtimeMissing } from '../tests/support/processes.ts';

const rabbitmqUrl = requireEnv('RABBITMQ_URL');
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const BATCH_EVENTS = 100;
/** Batch connections: 8 × 100 events stay under the API's default MAX_UNCONFIRMED of 1,000. */
const BATCH_CONNECTIONS = 8;

for (const runtime of ['node26', 'bun'] as const) {
  const missing = runtimeMissing(runtime);
  if (missing) throw new Error(missing);
}
const node26 = join(root, 'tests/node26/node_modules/.bin/node');

interface Contender {
  readonly name: string;
  /** Events each request carries. */
  readonly events: number;
  readonly connections: number;
  readonly path: string;
  readonly bodyFile?: string;
  readonly queue: string;
  start(queue: string): Promise<RunningService>;
}

const redis = await RedisServer.start();
const batchFile = join(tmpdir(), `bench-side-batch-${process.pid}.json`);
const event = { userId: 'a1b2c3d4-e5f6-7890-1234-567890abcdef', eventType: 'user_login', timestamp: '2023-10-27T10:00:00Z', payload: { ipAddress: '192.168.1.1', device: 'desktop', browser: 'Chrome' } };
writeFileSync(batchFile, JSON.stringify({ batch: Array.from({ length: BATCH_EVENTS }, () => event) }));

const apiEnv = (queue: string, extra: Record<string, string> = {}) => ({
  RABBITMQ_URL: rabbitmqUrl,
  QUEUE_NAME: queue,
  EVENTS_EXCHANGE: queue,
  API_HOST: '127.0.0.1',
  API_PORT: '0',
  RATE_LIMIT_MAX_REQUESTS: '1000000000',
  // wrk's connections all come from one address.
  MAX_CONNECTIONS_PER_CLIENT: '1000000',
  ...extra,
});
const api = (runtime: Runtime, extra?: Record<string, string>) => (queue: string) => startReady('api', runtime, apiEnv(queue, extra));
/** A server that is not the API: it is given the API's queue arguments to declare the same queue. */
const other = (argv: string[]) => async (queue: string) =>
  startCommand(argv.join(' '), argv, { ...apiEnv(queue), QUEUE_ARGUMENTS: await declareApiQueue(rabbitmqUrl, queue) });

const queue = (slug: string) => `bench_side_${process.pid}_${slug}`;
const single = { events: 1, connections, path: '/api/v1/activities' };
const contenders: Contender[] = [
  { name: 'bare node:http + amqplib confirm, Node 26', ...single, queue: queue('baseline'), start: other([node26, 'bench/baseline.ts']) },
  { name: 'bare node:http + amqplib confirm, Bun', ...single, queue: queue('baseline_bun'), start: other(['bun', 'bench/baseline.ts']) },
  { name: 'Fastify 5, JSON-schema body, Node 26', ...single, queue: queue('fastify'), start: other([node26, 'bench/peers/fastify.mjs']) },
  { name: 'Fastify 5, JSON-schema body + @fastify/rate-limit + per-status counter, Node 26', ...single, queue: queue('fastify_limited'), start: other([node26, 'bench/peers/fastifyRateLimit.mjs']) },
  { name: 'Express 5 + express-rate-limit, Node 26', ...single, queue: queue('express'), start: other([node26, 'bench/peers/express.mjs']) },
  { name: 'event-tracker API, Node 26', ...single, queue: queue('api_node26'), start: api('node26') },
  { name: 'event-tracker API, Bun', ...single, queue: queue('api_bun'), start: api('bun') },
  { name: 'event-tracker API, Node 20 (tsx)', ...single, queue: queue('api_node20'), start: api('node20-tsx') },
  { name: 'event-tracker API, Node 26, RATE_LIMIT_STORE=redis', ...single, queue: queue('api_redis'), start: api('node26', { RATE_LIMIT_STORE: 'redis', REDIS_URL: redis.url }) },
  {
    name: `event-tracker API, Node 26, batch route (${BATCH_EVENTS} events, -c${BATCH_CONNECTIONS})`,
    events: BATCH_EVENTS,
    connections: BATCH_CONNECTIONS,
    path: '/api/v1/activities/batch',
    bodyFile: batchFile,
    queue: queue('api_batch'),
    start: api('node26'),
  },
];

interface Sample {
  readonly result: WrkResult;
  readonly cpuMicrosPerRequest: number;
}

const running: RunningService[] = [];
const samples = new Map<Contender, Sample[]>(contenders.map((contender) => [contender, []]));
try {
  for (const contender of contenders) running.push(await contender.start(contender.queue));
  for (let run = 0; run < runs; run++) {
    // Each run starts one server later in the list, so no server always follows the same one.
    for (let i = 0; i < contenders.length; i++) {
      const index = (i + run) % contenders.length;
      const contender = contenders[index]!;
      const server = running[index]!;
      const cpuBefore = cpuMicros(server.child.pid!);
      const result = await wrk(`http://127.0.0.1:${server.port}${contender.path}`, contender.connections, seconds, contender.bodyFile);
      const cpu = cpuMicros(server.child.pid!) - cpuBefore;
      samples.get(contender)!.push({ result, cpuMicrosPerRequest: cpu / result.requests });
      await clearQueues(rabbitmqUrl, 'purge', contender.queue);
    }
  }
} finally {
  await Promise.all(running.map((server) => stopService(server)));
  await clearQueues(rabbitmqUrl, 'delete', ...contenders.flatMap((contender) => [contender.queue, `${contender.queue}.dead`]));
  // Each server declared an exchange named after its queue (EVENTS_EXCHANGE).
  await deleteExchanges(rabbitmqUrl, ...contenders.map((contender) => contender.queue));
  await redis.stop();
  rmSync(batchFile, { force: true });
}

const baselineRps = median(samples.get(contenders[0]!)!.map((sample) => sample.result.requestsPerSecond));
const rows = contenders.map((contender) => {
  const taken = samples.get(contender)!;
  const rps = median(taken.map((sample) => sample.result.requestsPerSecond));
  return {
    server: contender.name,
    'req/s': rps,
    '÷ bare Node 26': rps / baselineRps,
    'events/s': rps * contender.events,
    'p50 ms': median(taken.map((sample) => sample.result.p50Ms)),
    'p99 ms': median(taken.map((sample) => sample.result.p99Ms)),
    'CPU µs / request': median(taken.map((sample) => sample.cpuMicrosPerRequest)),
    errors: taken.reduce((sum, sample) => sum + sample.result.errors, 0),
  };
});
table(`Side by side: wrk -c${connections}, ${seconds} s per run, median of ${runs} alternating runs`, rows);
// An answer other than 2xx means that server did other work than the rest: its row compares nothing.
const failed = rows.filter((row) => row.errors > 0).map((row) => row.server);
if (failed.length > 0) throw new Error(`non-2xx answers or socket errors from: ${failed.join('; ')}`);
