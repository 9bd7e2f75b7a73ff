// The ceiling of one quorum queue on this broker: publishes with confirms of the API's event
// message (persistent, ~230 bytes), keeping a fixed number unconfirmed (the API's MAX_UNCONFIRMED
// plays this part), with and without a consumer draining the queue at the same time; then the
// same load split over two quorum queues (a partitioned stream) on this one node.
// SCALING.md quotes it: past this rate the stream has to be split over several queues.
// Usage: RABBITMQ_URL=... node --import tsx bench/quorumQueue.ts   (BENCH_SECONDS, default 5; BENCH_WINDOWS, default 1,10,100,1000)
import { randomUUID } from 'node:crypto';
import amqp, { type ConfirmChannel } from 'amqplib';
import { assertTopology } from '@event-tracker/common/broker/topology.ts';
import { publishFor, requireEnv, table } from './support.ts';
import { deleteTopology, testTopology } from '../tests/support/services.ts';

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


const connection = await amqp.connect(rabbitmqUrl);
const rows: Record<string, string | number>[] = [];
try {
  const channel = await connection.createConfirmChannel();
  await assertTopology(channel, testTopology(queue));
  for (const window of windows) {
    rows.push({ consumer: 'none', unconfirmed: window, ...(await publishFor(channel, queue, body, seconds, window)) });
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
  const published = await publishFor(channel, queue, body, seconds, window);
  rows.push({ consumer: 'acking, prefetch 1000', unconfirmed: window, ...published, 'consumed msg/s': (consumed - before) / seconds });
  await consuming.close();
  await channel.purgeQueue(queue);

  // Two queues, a channel each, half the window each: what partitioning buys on one node.
  const second = await connection.createConfirmChannel();
  await assertTopology(second, testTopology(`${queue}_2`));
  const halves = await Promise.all([publishFor(channel, queue, body, seconds, window / 2), publishFor(second, `${queue}_2`, body, seconds, window / 2)]);
  rows.push({
    consumer: 'none, two queues',
    unconfirmed: window,
    'confirmed msg/s': halves[0]!['confirmed msg/s']! + halves[1]!['confirmed msg/s']!,
    'confirm p50 ms': Math.max(halves[0]!['confirm p50 ms']!, halves[1]!['confirm p50 ms']!),
    'confirm p99 ms': Math.max(halves[0]!['confirm p99 ms']!, halves[1]!['confirm p99 ms']!),
  });
} finally {
  await connection.close();
  await deleteTopology(queue);
  await deleteTopology(`${queue}_2`);
}
table(`One quorum queue: publishes with confirms, ${seconds} s per row (single-node RabbitMQ on this machine)`, rows);
