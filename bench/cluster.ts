// What replication costs a publish: confirm latency (and confirmed messages per second) of the API's
// event message on one quorum queue, on the single node of RABBITMQ_URL versus the three-node cluster
// of RABBITMQ_CLUSTER_URL (3 replicas), published through the node that leads the queue and through
// one that does not. One publish at a time is the latency a lone request sees; 100 unconfirmed, a busy API.
// Usage: RABBITMQ_URL=... RABBITMQ_CLUSTER_URL=... node --import tsx bench/cluster.ts   (BENCH_SECONDS, default 5; BENCH_WINDOWS, default 1,100)
// The cluster: tests/support/rabbitCluster.ts (TESTING.md "The cluster suite").
import { randomUUID } from 'node:crypto';
import amqp, { type ConfirmChannel } from 'amqplib';
import { publishFor, requireEnv, table } from './support.ts';

const single = requireEnv('RABBITMQ_URL').split(',')[0]!;
const clusterNodes = requireEnv('RABBITMQ_CLUSTER_URL').split(',');
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const windows = (process.env.BENCH_WINDOWS ?? '1,100').split(',').map(Number);
const queue = `bench_cluster_${process.pid}`;

const body = Buffer.from(
  JSON.stringify({
    id: randomUUID(),
    userId: 'a1b2c3d4-e5f6-7890-1234-567890abcdef',
    eventType: 'user_login',
    timestamp: '2023-10-27T10:00:00Z',
    payload: { ipAddress: '192.168.1.1', device: 'desktop', browser: 'Chrome' },
    receivedAt: '2023-10-27T10:00:00.123Z',
  }),
);


/**
 * Declares the queue through `declareVia` (its leader goes on that node: client-local), measures
 * every window publishing through `publishVia`, and deletes the queue.
 */
async function measure(broker: string, declareVia: string, publishVia: string, through: string): Promise<Record<string, string | number>[]> {
  const declaring = await amqp.connect(declareVia);
  const rows: Record<string, string | number>[] = [];
  try {
    const setup = await declaring.createChannel();
    await setup.assertQueue(queue, {
      durable: true,
      arguments: { 'x-queue-type': 'quorum', 'x-quorum-initial-group-size': 3, 'x-queue-leader-locator': 'client-local' },
    });
    const publishing = await amqp.connect(publishVia);
    try {
      const channel = await publishing.createConfirmChannel();
      for (const window of windows) {
        rows.push({ broker, 'published through': through, unconfirmed: window, ...(await publishFor(channel, queue, body, seconds, window)) });
        await setup.purgeQueue(queue);
      }
    } finally {
      await publishing.close();
    }
    await setup.deleteQueue(queue);
  } finally {
    await declaring.close();
  }
  return rows;
}

const rows = [
  ...(await measure('single node', single, single, 'the node')),
  ...(await measure('3-node cluster, 3 replicas', clusterNodes[0]!, clusterNodes[0]!, "the leader's node")),
  ...(await measure('3-node cluster, 3 replicas', clusterNodes[0]!, clusterNodes[1]!, 'another node')),
];
table(`Publish confirms, one node versus a three-node cluster (one quorum queue), ${seconds} s per row`, rows);
