// Ingest throughput and latency: wrk against POST /api/v1/activities and against the bare
// confirm baseline (bench/baseline.ts), same runtime, same run, several concurrencies.
// Usage: RABBITMQ_URL=... node --import tsx bench/ingest.ts   (BENCH_SECONDS, BENCH_RUNS, BENCH_RUNTIMES)
import { clearQueues, median, requireEnv, scriptCommand, startCommand, startReady, stopService, table, wrk, type Runtime } from './support.ts';

const rabbitmqUrl = requireEnv('RABBITMQ_URL');
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const runtimes = (process.env.BENCH_RUNTIMES ?? 'node20-tsx,bun').split(',') as Runtime[];
const concurrencies = (process.env.BENCH_CONCURRENCY ?? '10,50,200').split(',').map(Number);

const rows: Record<string, string | number>[] = [];
for (const runtime of runtimes) {
  const queue = `bench_ingest_${process.pid}`;
  const env = {
    RABBITMQ_URL: rabbitmqUrl,
    QUEUE_NAME: queue,
    API_HOST: '127.0.0.1',
    API_PORT: '0',
    LOG_LEVEL: 'info',
    RATE_LIMIT_MAX_REQUESTS: '1000000000',
  };
  const api = await startReady('api', runtime, env);
  const baseline = await startCommand(`baseline on ${runtime}`, scriptCommand(runtime, 'bench/baseline.ts'), {
    ...env,
    QUEUE_NAME: `${queue}_baseline`,
  });
  try {
    for (const connections of concurrencies) {
      const ours = [];
      const bare = [];
      for (let i = 0; i < runs; i++) {
        // Alternate so drift on a shared 2-core machine hits both sides alike.
        bare.push(await wrk(`http://127.0.0.1:${baseline.port}/`, connections, seconds));
        ours.push(await wrk(`http://127.0.0.1:${api.port}/api/v1/activities`, connections, seconds));
        await clearQueues(rabbitmqUrl, 'purge', queue, `${queue}_baseline`);
      }
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
    await Promise.all([stopService(api), stopService(baseline)]);
    await clearQueues(rabbitmqUrl, 'delete', queue, `${queue}.dead`, `${queue}_baseline`);
  }
}
table(`Ingest: wrk, ${seconds} s per run, median of ${runs} runs`, rows);
