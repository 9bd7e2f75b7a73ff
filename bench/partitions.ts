// What QUEUE_PARTITIONS buys on the three-node cluster: the stream as one quorum queue versus three
// partitions (their leaders spread over the nodes by `x-queue-leader-locator: balanced`), each fed
// through the events exchange exactly as the API publishes (encodeMessage, routing key = eventType,
// partition header from the userId) while consumers ack everything as it arrives (prefetch 1000,
// one connection per queue, the nodes taken in turn). Drained events/s is the consumers' rate while
// publishers keep 1000 publishes unconfirmed, spread over one connection per node. Rounds
// alternate between the two shapes; each row is the median.
// Usage: RABBITMQ_CLUSTER_URL=... node --import tsx bench/partitions.ts   (BENCH_SECONDS, default 5; BENCH_RUNS, default 3)
// The cluster: tests/support/rabbitCluster.ts (TESTING.md "The cluster suite").
import { randomUUID } from 'node:crypto';
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { QueueMessage } from '@event-tracker/shared';
import { assertTopology, deadLetterQueueName, partitionExchangeName, routingKey, streamQueues, type TopologyOptions } from '@event-tracker/common/broker/topology.ts';
import { encodeMessage } from '../api/src/publisher.ts';
import { median, requireEnv, table } from './support.ts';

const nodes = requireEnv('RABBITMQ_CLUSTER_URL').split(',');
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const WINDOW = 1_000;
const USERS = Array.from({ length: 1_000 }, () => randomUUID());

function topologyFor(partitions: number): TopologyOptions {
  const name = `bench_partitions_${partitions}_${process.pid}`;
  return { exchange: name, queueName: name, queueType: 'quorum', deliveryLimit: 10, replicas: 3, partitions };
}

async function round(topology: TopologyOptions): Promise<{ drained: number; confirmed: number }> {
  const connections: ChannelModel[] = await Promise.all(nodes.map((url) => amqp.connect(url)));
  try {
    await assertTopology(await connections[0]!.createChannel(), topology);
    let consumed = 0;
    const queues = streamQueues(topology);
    for (const [index, queue] of queues.entries()) {
      const channel = await connections[index % connections.length]!.createChannel();
      await channel.prefetch(1_000);
      await channel.consume(queue, (message) => {
        if (message === null) return;
        consumed += 1;
        channel.ack(message);
      });
    }
    const publishers: ConfirmChannel[] = await Promise.all(connections.map((connection) => connection.createConfirmChannel()));
    const deadline = performance.now() + seconds * 1000;
    let confirmed = 0;
    const publish = async (channel: ConfirmChannel) => {
      while (performance.now() < deadline) {
        const message: QueueMessage = { id: randomUUID(), userId: USERS[confirmed % USERS.length]!, eventType: 'page_view', timestamp: '2023-10-27T10:00:00Z', payload: { device: 'desktop' } };
        const { content, properties } = encodeMessage(message, new Date(), topology.partitions);
        await new Promise<void>((resolve, reject) => channel.publish(topology.exchange, routingKey(message.eventType), content, properties, (err) => (err ? reject(err) : resolve())));
        confirmed += 1;
      }
    };
    const started = performance.now();
    const consumedBefore = consumed;
    await Promise.all(publishers.flatMap((channel) => Array.from({ length: WINDOW / publishers.length }, () => publish(channel))));
    const elapsed = (performance.now() - started) / 1000;
    return { drained: (consumed - consumedBefore) / elapsed, confirmed: confirmed / elapsed };
  } finally {
    const channel = await connections[0]!.createChannel();
    for (const queue of streamQueues(topology)) {
      await channel.deleteQueue(queue);
      await channel.deleteQueue(deadLetterQueueName(queue));
    }
    await channel.deleteExchange(partitionExchangeName(topology.queueName));
    await channel.deleteExchange(topology.exchange);
    await Promise.all(connections.map((connection) => connection.close().catch(() => {})));
  }
}

const shapes = [1, 3];
const results = new Map<number, Array<{ drained: number; confirmed: number }>>(shapes.map((n) => [n, []]));
for (let run = 0; run < runs; run++) {
  for (const partitions of shapes) results.get(partitions)!.push(await round(topologyFor(partitions)));
}
table(
  `The stream on the three-node cluster: one quorum queue versus three partitions, ${seconds} s per round, median of ${runs}`,
  shapes.map((partitions) => ({
    stream: partitions === 1 ? 'one queue' : `${partitions} partitions`,
    'drained events/s': median(results.get(partitions)!.map((result) => result.drained)),
    'confirmed events/s': median(results.get(partitions)!.map((result) => result.confirmed)),
  })),
);
