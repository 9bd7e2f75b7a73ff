// Consumer throughput: pre-fill a queue with N events, start the consumer, time until all are
// stored, at several PREFETCH/BATCH_SIZE settings; and a bare insertMany loop of the same
// documents against the same database in the same run, so the consumer's overhead is a ratio; with
// the cores each side used meanwhile (from /proc), which say whether the machine or the consumer sets the pace.
// Usage: RABBITMQ_URL=... DATABASE_URL=... node --import tsx bench/consumer.ts   (BENCH_EVENTS, BENCH_SETTINGS, BENCH_RUNTIMES, BENCH_RUNS;
// BENCH_CPU_PROFILE=1 also takes a --cpu-prof profile of each Node consumer and prints its CPU per event by kind of code)
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { MongoClient } from 'mongodb';
import { assertTopology } from '@event-tracker/common/broker/topology.ts';
import { deleteTopology, testTopology } from '../tests/support/services.ts';
import { perRequestTable } from './cpuProfile.ts';
import { cpuMicros, cpuSecondsBetween, cpuSecondsOf, median, requireEnv, startService, stopService, table, type Runtime } from './support.ts';

const rabbitmqUrl = requireEnv('RABBITMQ_URL');
const databaseUrl = requireEnv('DATABASE_URL');
const events = Number(process.env.BENCH_EVENTS ?? 20_000);
const runtimes = (process.env.BENCH_RUNTIMES ?? 'node26,bun,node20-tsx').split(',') as Runtime[];
const runs = Number(process.env.BENCH_RUNS ?? 3);
const profiling = process.env.BENCH_CPU_PROFILE === '1';
const settings = (process.env.BENCH_SETTINGS ?? '200x100,500x250,1000x500').split(',').map((s) => s.split('x').map(Number) as [number, number]);

/** Where the two cores go: the broker, and the database (MongoDB, or FerretDB on PostgreSQL). */
const BROKER = ['beam.smp'];
const DATABASE = ['mongod', 'ferretdb', 'postgres'];
const cores = () => ({ broker: cpuSecondsOf(BROKER), database: cpuSecondsOf(DATABASE), wall: performance.now() / 1000 });
/**
 * CPU seconds each side used per wall second since `before`: 2.0 is both cores of this machine. A
 * database process that ended meanwhile (a FerretDB backend) is not counted, so the database's share is a floor.
 */
function coresSince(before: ReturnType<typeof cores>, ownSeconds: number): string {
  const after = cores();
  const wall = after.wall - before.wall;
  const used = [ownSeconds, cpuSecondsBetween(before.broker, after.broker), cpuSecondsBetween(before.database, after.database)].map((seconds) => seconds / wall);
  return `${used.map((share) => share.toFixed(2)).join(' / ')} (${used.reduce((a, b) => a + b).toFixed(2)})`;
}

function eventAt(i: number) {
  return {
    id: randomUUID(),
    userId: `user-${i % 1000}`,
    eventType: i % 3 === 0 ? 'page_view' : 'user_login',
    timestamp: new Date(Date.UTC(2023, 9, 27, 10, 0, 0, i)).toISOString(),
    payload: { ipAddress: '192.168.1.1', device: 'desktop', browser: 'Chrome', i },
  };
}

const receivedAt = new Date().toISOString();

async function prefill(queue: string, bodies: ReturnType<typeof eventAt>[]): Promise<void> {
  const connection = await amqp.connect(rabbitmqUrl);
  try {
    const channel = await connection.createConfirmChannel();
    await assertTopology(channel, testTopology(queue));
    for (const body of bodies) {
      // As the API publishes it: the receive time in the body.
      const ok = channel.sendToQueue(queue, Buffer.from(JSON.stringify({ ...body, receivedAt })), {
        persistent: true,
        contentType: 'application/json',
        messageId: body.id,
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

interface Run {
  readonly eventsPerSecond: number;
  /** Cores used meanwhile: this side / broker / database (sum). */
  readonly cores: string;
}

async function consumerRun(runtime: Runtime, name: string, prefetch: number, batchSize: number): Promise<Run> {
  await prefill(name, bodies);
  // Bun takes no flags from NODE_OPTIONS, so only the Node consumers are profiled.
  const profileDir = profiling && runtime !== 'bun' ? mkdtempSync(join(tmpdir(), 'consumer-profile-')) : undefined;
  const consumer = await startService('consumer', runtime, {
    ...(profileDir === undefined ? {} : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profileDir}` }),
    RABBITMQ_URL: rabbitmqUrl,
    DATABASE_URL: databaseNamed(name),
    QUEUE_NAME: name,
    EVENTS_EXCHANGE: name,
    PREFETCH: String(prefetch),
    BATCH_SIZE: String(batchSize),
    HEALTH_HOST: '127.0.0.1',
    HEALTH_PORT: '0',
    LOG_LEVEL: 'info',
  });
  const cpuBefore = cpuMicros(consumer.child.pid!);
  const before = cores();
  const eventsPerSecond = await storeRate(consumer.port, events);
  const used = coresSince(before, (cpuMicros(consumer.child.pid!) - cpuBefore) / 1e6);
  await stopService(consumer);
  if (profileDir !== undefined) {
    const file = readdirSync(profileDir).find((entry) => entry.endsWith('.cpuprofile'))!;
    console.log(`\n### CPU per event of the consumer on ${runtime}, ${prefetch} x ${batchSize}, over its whole life (${join(profileDir, file)})\n`);
    console.log(perRequestTable(join(profileDir, file), events, 'event'));
  }
  await deleteTopology(name);
  const client = new MongoClient(databaseNamed(name));
  try {
    const stored = await client.db().collection('activities').countDocuments();
    if (stored !== events) throw new Error(`expected ${events} documents, found ${stored}`);
    await client.db().dropDatabase();
  } finally {
    await client.close();
  }
  return { eventsPerSecond, cores: used };
}

/** The same documents, indexes, batch size and write concern as the consumer's; no broker. */
async function bareRun(name: string, batchSize: number): Promise<Run> {
  const client = new MongoClient(databaseNamed(name));
  try {
    const collection = client.db().collection('activities');
    await collection.createIndex({ userId: 1, timestamp: -1 });
    await collection.createIndex({ eventType: 1, timestamp: -1 });
    const before = cores();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < bodies.length; i += batchSize) {
      const docs = bodies.slice(i, i + batchSize).map((b) => ({ _id: b.id, ...b, timestamp: new Date(b.timestamp), receivedAt: new Date(receivedAt), processedAt: new Date() }));
      await collection.insertMany(docs as never[], { ordered: false, writeConcern: { w: 'majority', j: true } });
    }
    const eventsPerSecond = events / ((performance.now() - started) / 1000);
    const cpu = process.cpuUsage(cpuBefore);
    const used = coresSince(before, (cpu.user + cpu.system) / 1e6);
    await client.db().dropDatabase();
    return { eventsPerSecond, cores: used };
  } finally {
    await client.close();
  }
}

const bodies = Array.from({ length: events }, (_, i) => eventAt(i));
const rows: Record<string, string | number>[] = [];
for (const runtime of runtimes) {
  for (const [prefetch, batchSize] of settings) {
    const name = `bench_consumer_${process.pid}_${runtime.replace(/\W/g, '')}_${prefetch}_${batchSize}`;
    const pairs: [Run, Run][] = [];
    for (let run = 0; run < runs; run++) {
      // Alternating which goes first, so the database's drift hits both alike.
      const bareFirst = run % 2 === 1 ? await bareRun(`${name}_bare`, batchSize) : undefined;
      const consumer = await consumerRun(runtime, name, prefetch, batchSize);
      pairs.push([consumer, bareFirst ?? (await bareRun(`${name}_bare`, batchSize))]);
    }
    const ratios = pairs.map(([consumer, bare]) => consumer.eventsPerSecond / bare.eventsPerSecond);
    const middle = pairs[ratios.indexOf([...ratios].sort((a, b) => a - b)[Math.floor(runs / 2)]!)]!;
    rows.push({
      runtime,
      'PREFETCH x BATCH_SIZE': `${prefetch} x ${batchSize}`,
      'consumer events/s': median(pairs.map(([consumer]) => consumer.eventsPerSecond)),
      'bare insertMany events/s': median(pairs.map(([, bare]) => bare.eventsPerSecond)),
      'ratio (median)': median(ratios),
      'ratios, run by run': ratios.map((ratio) => ratio.toFixed(2)).join(' / '),
      'median run, cores: consumer / broker / database (sum)': middle[0].cores,
      'its bare loop, cores: loop / broker / database': middle[1].cores,
    });
  }
}
table(`Consumer: ${events} pre-filled events, ${runs} alternating runs (timed from the first stored document to the last)`, rows);
