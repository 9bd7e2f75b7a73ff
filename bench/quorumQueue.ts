// The ceiling of one quorum queue on this broker: publishes with confirms of the API's event
// message (persistent, ~230 bytes), keeping a fixed number unconfirmed (the API's MAX_UNCONFIRMED
// plays this part), with and without a consumer draining the queue at the same time; then the
// same load split over two quorum queues (a partitioned stream) on this one node.
// SCALING.md quotes it: past this rate the stream has to be split over several queues.
// Usage: RABBITMQ_URL=... node --import tsx bench/quorumQueue.ts   (BENCH_SECONDS, default 5; BENCH_WINDOWS, default 1,10,100,1000)
import { randomUUID } from 'node:crypto';
import amqp, { type ConfirmChannel } from 'amqplib';
import { assertTopology } from '@event-tracker/common/broker/topology.ts';
import { clearQueues, requireEnv, table } from './support.ts';
import { testTopology } from '../tests/support/services.ts';

const rabbitmqUrl = requireEnv('RABBITMQ_URL');
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const windows = (process.env.BENCH_WINDOWS ?? '1,10,100,1000').split(',').map(Number);
const queue = `bench_quorum_${process.pid}`;

const body = Buffer.from(
  JSON.stringify({
    id: randomUUID(),
    userId: 'a1b2c3d4-e5f6-7890-1234-567890abcdef',
    eventType: 'user_login',
    timestamp: '2023-10-27T10:00:00Z',
    payload: { ipAddress: '192.168.1.1', device: 'desktop', browser: 'Chrome' },
  }),
);

const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;

/** Publishes for `seconds`, `window` unconfirmed at most; confirmed messages per second and confirm latency. */
async function publishFor(channel: ConfirmChannel, window: number, to = queue): Promise<Record<string, number>> {
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  const publisher = async () => {
    while (performance.now() < deadline) {
      const at = performance.now();
      await new Promise<void>((resolve, reject) => {
        channel.sendToQueue(to, body, { persistent: true, contentType: 'application/json', messageId: randomUUID() }, (err) => (err ? reject(err) : resolve()));
      });
      latencies.push(performance.now() - at);
    }
  };
  await Promise.all(Array.from({ length: window }, publisher));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { 'confirmed msg/s': latencies.length / elapsed, 'confirm p50 ms': quantile(latencies, 0.5), 'confirm p99 ms': quantile(latencies, 0.99) };
}

const connection = await amqp.connect(rabbitmqUrl);
const rows: Record<string, string | number>[] = [];
try {
  const channel = await connection.createConfirmChannel();
  await assertTopology(channel, testTopology(queue));
  for (const window of windows) {
    rows.push({ consumer: 'none', unconfirmed: window, ...(await publishFor(channel, window)) });
    await channel.purgeQueue(queue);
  }
  // The same with a consumer acking everything as it arrives (prefetch 1000, as a busy consumer).
  const consuming = await connection.createChannel();
  await consuming.prefetch(1_000);
  let consumed = 0;
  await consuming.consume(queue, (message) => {
    if (message === null) return;
    consumed += 1;
    consuming.ack(message);
  });
  const window = windows.at(-1)!;
  const before = consumed;
  const published = await publishFor(channel, window);
  rows.push({ consumer: 'acking, prefetch 1000', unconfirmed: window, ...published, 'consumed msg/s': (consumed - before) / seconds });
  await consuming.close();
  await channel.purgeQueue(queue);

  // Two queues, a channel each, half the window each: what partitioning buys on one node.
  const second = await connection.createConfirmChannel();
  await assertTopology(second, testTopology(`${queue}_2`));
  const halves = await Promise.all([publishFor(channel, window / 2), publishFor(second, window / 2, `${queue}_2`)]);
  rows.push({
    consumer: 'none, two queues',
    unconfirmed: window,
    'confirmed msg/s': halves[0]!['confirmed msg/s']! + halves[1]!['confirmed msg/s']!,
    'confirm p50 ms': Math.max(halves[0]!['confirm p50 ms']!, halves[1]!['confirm p50 ms']!),
    'confirm p99 ms': Math.max(halves[0]!['confirm p99 ms']!, halves[1]!['confirm p99 ms']!),
  });
} finally {
  await connection.close();
  await clearQueues(rabbitmqUrl, 'delete', queue, `${queue}.dead`, `${queue}_2`, `${queue}_2.dead`);
}
table(`One quorum queue: publishes with confirms, ${seconds} s per row (single-node RabbitMQ on this machine)`, rows);
