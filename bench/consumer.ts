// Consumer throughput: pre-fill a queue with N events, start the consumer, time until all are
// stored, at several PREFETCH/BATCH_SIZE settings; and a bare insertMany loop of the same
// documents against the same database in the same run, so the consumer's overhead is a ratio.
// Usage: RABBITMQ_URL=... DATABASE_URL=... node --import tsx bench/consumer.ts   (BENCH_EVENTS, BENCH_SETTINGS)
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { MongoClient } from 'mongodb';
import { assertTopology } from '@event-tracker/common/topology.ts';
import { clearQueues, requireEnv, startService, stopService, table, type Runtime } from './support.ts';

const rabbitmqUrl = requireEnv('RABBITMQ_URL');
const databaseUrl = requireEnv('DATABASE_URL');
const events = Number(process.env.BENCH_EVENTS ?? 20_000);
const runtime = (process.env.BENCH_RUNTIME ?? 'node20-tsx') as Runtime;
const settings = (process.env.BENCH_SETTINGS ?? '50x50,200x100,500x250,1000x500').split(',').map((s) => s.split('x').map(Number) as [number, number]);

function eventAt(i: number) {
  return {
    id: randomUUID(),
    userId: `user-${i % 1000}`,
    eventType: i % 3 === 0 ? 'page_view' : 'user_login',
    timestamp: new Date(Date.UTC(2023, 9, 27, 10, 0, 0, i)).toISOString(),
    payload: { ipAddress: '192.168.1.1', device: 'desktop', browser: 'Chrome', i },
  };
}

async function prefill(queue: string, bodies: ReturnType<typeof eventAt>[]): Promise<void> {
  const connection = await amqp.connect(rabbitmqUrl);
  try {
    const channel = await connection.createConfirmChannel();
    await assertTopology(channel, { queueName: queue, queueType: 'quorum', deliveryLimit: 10 });
    const receivedAt = new Date().toISOString();
    for (const body of bodies) {
      const ok = channel.sendToQueue(queue, Buffer.from(JSON.stringify(body)), {
        persistent: true,
        contentType: 'application/json',
        messageId: body.id,
        headers: { receivedAt },
      });
      if (!ok) await new Promise((resolve) => channel.once('drain', resolve));
    }
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

function databaseNamed(name: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * Events/s from the first stored document to the last, read from the consumer's own
 * `consumer_messages_stored_total` (counted once the database acknowledged each write): start-up
 * is not throughput, and polling the database's count would itself slow FerretDB down (measured).
 */
async function storeRate(healthPort: number, count: number): Promise<number> {
  const stored = async () => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
    return Number(/^consumer_messages_stored_total (\d+)/m.exec(text)?.[1] ?? 0);
  };
  let first = 0;
  while (first === 0) first = await stored();
  const started = performance.now();
  while ((await stored()) < count);
  return (count - first) / ((performance.now() - started) / 1000);
}

const rows: Record<string, string | number>[] = [];
for (const [prefetch, batchSize] of settings) {
  const name = `bench_consumer_${process.pid}_${prefetch}_${batchSize}`;
  const bodies = Array.from({ length: events }, (_, i) => eventAt(i));
  await prefill(name, bodies);

  const client = new MongoClient(databaseNamed(name));
  const consumer = await startService('consumer', runtime, {
    RABBITMQ_URL: rabbitmqUrl,
    DATABASE_URL: databaseNamed(name),
    QUEUE_NAME: name,
    PREFETCH: String(prefetch),
    BATCH_SIZE: String(batchSize),
    HEALTH_HOST: '127.0.0.1',
    HEALTH_PORT: '0',
    LOG_LEVEL: 'info',
  });
  const consumerRate = await storeRate(consumer.port, events);
  await stopService(consumer);
  const inDatabase = await client.db().collection('activities').countDocuments();
  if (inDatabase !== events) throw new Error(`expected ${events} documents, found ${inDatabase}`);

  // The bare loop: the same documents, indexes, batch size and write concern; no broker.
  const bare = client.db(`${name}_bare`).collection('activities');
  await bare.createIndex({ userId: 1, timestamp: -1 });
  await bare.createIndex({ eventType: 1, timestamp: -1 });
  const bareStarted = performance.now();
  for (let i = 0; i < bodies.length; i += batchSize) {
    const docs = bodies.slice(i, i + batchSize).map((b) => ({ _id: b.id, ...b, timestamp: new Date(b.timestamp), processedAt: new Date() }));
    await bare.insertMany(docs as never[], { ordered: false, writeConcern: { w: 'majority', j: true } });
  }
  const bareSeconds = (performance.now() - bareStarted) / 1000;

  rows.push({
    'PREFETCH x BATCH_SIZE': `${prefetch} x ${batchSize}`,
    events,
    'consumer events/s': consumerRate,
    'bare insertMany events/s': events / bareSeconds,
    ratio: consumerRate / (events / bareSeconds),
  });
  await client.db().dropDatabase();
  await client.db(`${name}_bare`).dropDatabase();
  await client.close();
  await clearQueues(rabbitmqUrl, 'delete', name, `${name}.dead`);
}
table(`Consumer: ${events} pre-filled events on ${runtime} (timed from the first stored document to the last)`, rows);
