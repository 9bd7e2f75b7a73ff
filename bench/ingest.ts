// Ingest throughput and latency: wrk against POST /api/v1/activities and against the bare
// confirm baseline (bench/baseline.ts), same runtime, same run, several concurrencies; and the API
// again with RATE_LIMIT_STORE=redis (a redis-server of its own), so the shared limit's cost is a ratio.
// Usage: RABBITMQ_URL=... node --import tsx bench/ingest.ts   (BENCH_SECONDS, BENCH_RUNS, BENCH_RUNTIMES)
import { RedisServer } from '../tests/support/redisServer.ts';
import { clearQueues, declareApiQueue, median, requireEnv, scriptCommand, startCommand, startReady, stopService, table, wrk, type Runtime } from './support.ts';

const rabbitmqUrl = requireEnv('RABBITMQ_URL');
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const runtimes = (process.env.BENCH_RUNTIMES ?? 'node20-tsx,bun').split(',') as Runtime[];
const concurrencies = (process.env.BENCH_CONCURRENCY ?? '10,50,200').split(',').map(Number);

/** Sum and count of a histogram (or a counter's total) on the API's /metrics. */
async function scrape(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

const redis = await RedisServer.start();
const rows: Record<string, string | number>[] = [];
const redisRows: Record<string, string | number>[] = [];
for (const runtime of runtimes) {
  const queue = `bench_ingest_${process.pid}`;
  const env = {
    RABBITMQ_URL: rabbitmqUrl,
    QUEUE_NAME: queue,
    EVENTS_EXCHANGE: queue,
    API_HOST: '127.0.0.1',
    API_PORT: '0',
    LOG_LEVEL: 'info',
    RATE_LIMIT_MAX_REQUESTS: '1000000000',
    // wrk's connections all come from one address.
    MAX_CONNECTIONS_PER_CLIENT: '1000000',
  };
  const api = await startReady('api', runtime, env);
  const shared = await startReady('api', runtime, { ...env, QUEUE_NAME: `${queue}_redis`, EVENTS_EXCHANGE: `${queue}_redis`, RATE_LIMIT_STORE: 'redis', REDIS_URL: redis.url });
  const baseline = await startCommand(`baseline on ${runtime}`, scriptCommand(runtime, 'bench/baseline.ts'), {
    ...env,
    QUEUE_NAME: `${queue}_baseline`,
    EVENTS_EXCHANGE: `${queue}_baseline`,
    QUEUE_ARGUMENTS: await declareApiQueue(rabbitmqUrl, `${queue}_baseline`),
  });
  try {
    for (const connections of concurrencies) {
      const ours = [];
      const bare = [];
      const withRedis = [];
      const [scriptSeconds, scripts, fallbacks] = await Promise.all(
        ['api_rate_limit_redis_seconds_sum', 'api_rate_limit_redis_seconds_count', 'api_rate_limit_fallbacks_total'].map((name) => scrape(shared.port, name)),
      );
      for (let i = 0; i < runs; i++) {
        // Alternate so drift on a shared 2-core machine hits every side alike.
        bare.push(await wrk(`http://127.0.0.1:${baseline.port}/`, connections, seconds));
        ours.push(await wrk(`http://127.0.0.1:${api.port}/api/v1/activities`, connections, seconds));
        withRedis.push(await wrk(`http://127.0.0.1:${shared.port}/api/v1/activities`, connections, seconds));
        await clearQueues(rabbitmqUrl, 'purge', queue, `${queue}_baseline`, `${queue}_redis`);
      }
      const [scriptSecondsAfter, scriptsAfter, fallbacksAfter] = await Promise.all(
        ['api_rate_limit_redis_seconds_sum', 'api_rate_limit_redis_seconds_count', 'api_rate_limit_fallbacks_total'].map((name) => scrape(shared.port, name)),
      );
      const memoryRps = median(ours.map((r) => r.requestsPerSecond));
      const redisRps = median(withRedis.map((r) => r.requestsPerSecond));
      redisRows.push({
        runtime,
        connections,
        'memory req/s': memoryRps,
        'redis req/s': redisRps,
        'redis / memory': redisRps / memoryRps,
        'memory p99 ms': median(ours.map((r) => r.p99Ms)),
        'redis p99 ms': median(withRedis.map((r) => r.p99Ms)),
        // The script's round trip as the API saw it under this load (its histogram's mean).
        'script mean ms': ((scriptSecondsAfter! - scriptSeconds!) / (scriptsAfter! - scripts!)) * 1000,
        fallbacks: fallbacksAfter! - fallbacks!,
        errors: withRedis.reduce((sum, r) => sum + r.errors, 0),
      });
      const oursRps = median(ours.map((r) => r.requestsPerSecond));
      const bareRps = median(bare.map((r) => r.requestsPerSecond));
      rows.push({
        runtime,
        connections,
        'api req/s': oursRps,
        'baseline req/s': bareRps,
        ratio: oursRps / bareRps,
        'api p50 ms': median(ours.map((r) => r.p50Ms)),
        'api p99 ms': median(ours.map((r) => r.p99Ms)),
        'api max ms': Math.max(...ours.map((r) => r.maxMs)),
        'baseline p99 ms': median(bare.map((r) => r.p99Ms)),
        errors: ours.reduce((sum, r) => sum + r.errors, 0),
      });
    }
  } finally {
    await Promise.all([stopService(api), stopService(shared), stopService(baseline)]);
    await clearQueues(rabbitmqUrl, 'delete', queue, `${queue}.dead`, `${queue}_baseline`, `${queue}_baseline.dead`, `${queue}_redis`, `${queue}_redis.dead`);
  }
}
await redis.stop();
table(`Ingest: wrk, ${seconds} s per run, median of ${runs} runs`, rows);
table(`Ingest with RATE_LIMIT_STORE=redis against the memory store, same run (one client key, limit raised; Redis on loopback)`, redisRows);
