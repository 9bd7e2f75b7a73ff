// End-to-end latency: from the API's 202 to the document being visible in the database, at a
// steady request rate, with the API and the consumer running as they do in production.
// Usage: RABBITMQ_URL=... DATABASE_URL=... node --import tsx bench/latency.ts   (BENCH_RATE, BENCH_SECONDS)
import { randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { clearQueues, requireEnv, startReady, startService, stopService, table, type Runtime } from './support.ts';

const rabbitmqUrl = requireEnv('RABBITMQ_URL');
const rate = Number(process.env.BENCH_RATE ?? 200);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const runtime = (process.env.BENCH_RUNTIME ?? 'node20-tsx') as Runtime;
const name = `bench_latency_${process.pid}`;
const url = new URL(requireEnv('DATABASE_URL'));
url.pathname = `/${name}`;

const env = {
  RABBITMQ_URL: rabbitmqUrl,
  DATABASE_URL: url.toString(),
  QUEUE_NAME: name,
  EVENTS_EXCHANGE: name,
  API_HOST: '127.0.0.1',
  API_PORT: '0',
  HEALTH_HOST: '127.0.0.1',
  HEALTH_PORT: '0',
  LOG_LEVEL: 'info',
  RATE_LIMIT_MAX_REQUESTS: '1000000000',
  // wrk's connections all come from one address.
  MAX_CONNECTIONS_PER_CLIENT: '1000000',
};
const [api, consumer] = await Promise.all([startReady('api', runtime, env), startService('consumer', runtime, env)]);
const client = new MongoClient(url.toString());
const collection = client.db().collection('activities');
const acceptedAt = new Map<string, number>();
const latencies: number[] = [];

// The watcher: polls for accepted ids not yet seen. Its 5 ms period bounds the resolution.
let sending = true;
const watcher = (async () => {
  while (sending || acceptedAt.size > 0) {
    const pending = [...acceptedAt.keys()];
    if (pending.length > 0) {
      const seenAt = performance.now();
      for (const doc of await collection.find({ _id: { $in: pending as never[] } }, { projection: { _id: 1 } }).toArray()) {
        latencies.push(seenAt - acceptedAt.get(doc._id as unknown as string)!);
        acceptedAt.delete(doc._id as unknown as string);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
})();

try {
  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < rate * seconds; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const id = randomUUID();
    inFlight.push(
      fetch(`http://127.0.0.1:${api.port}/api/v1/activities`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id, userId: 'u-1', eventType: 'page_view', timestamp: '2023-10-27T10:00:00Z', payload: { i } }),
      }).then(async (response) => {
        await response.arrayBuffer();
        if (response.status === 202) acceptedAt.set(id, performance.now());
      }),
    );
  }
  await Promise.all(inFlight);
  sending = false;
  await watcher;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))]!;
  table(`End-to-end latency, 202 to document visible, ${rate} events/s for ${seconds} s (${runtime})`, [
    { events: latencies.length, 'p50 ms': at(0.5), 'p99 ms': at(0.99), 'max ms': latencies.at(-1)! },
  ]);
} finally {
  await Promise.all([stopService(api), stopService(consumer)]);
  await client.db().dropDatabase();
  await client.close();
  await clearQueues(rabbitmqUrl, 'delete', name, `${name}.dead`);
}
