// Gate for integration tests: they run against the real RabbitMQ and MongoDB-protocol
// server named by RABBITMQ_URL and DATABASE_URL. Unset, they are skipped with one line
// saying how to enable them; with REQUIRE_SERVICES=1 a missing variable fails the run.
import amqp from 'amqplib';
import type { TopologyOptions } from '@event-tracker/common/broker/topology.ts';

export type ServiceVar = 'RABBITMQ_URL' | 'DATABASE_URL' | 'RABBITMQ_CLUSTER_URL' | 'RABBITMQ_CLUSTER_DIR';

const HOW = 'set RABBITMQ_URL and DATABASE_URL (and REQUIRE_SERVICES=1 to fail instead of skip); see README "Testing" and TESTING.md';
// The three-node cluster is started once for all its tests (.ci/run does so), not by each test.
const HOW_CLUSTER =
  'start a cluster with `node --import tsx tests/support/rabbitCluster.ts start <dir>`, then set RABBITMQ_CLUSTER_URL to what it prints and RABBITMQ_CLUSTER_DIR to <dir>, as .ci/run does';

/**
 * Returns `false` when every variable is set, else the skip reason; throws under REQUIRE_SERVICES=1,
 * or for the cluster's variables under REQUIRE_CLUSTER=1: a cluster is started by .ci/run, not by
 * the compose test runner, whose REQUIRE_SERVICES=1 must not fail for want of one.
 */
export function servicesMissing(...vars: ServiceVar[]): string | false {
  const missing = vars.filter((name) => !process.env[name]);
  if (missing.length === 0) return false;
  const cluster = missing.some((name) => name.startsWith('RABBITMQ_CLUSTER_'));
  const reason = `integration tests skipped: ${missing.join(', ')} unset; ${cluster ? HOW_CLUSTER : HOW}`;
  const required = cluster ? 'REQUIRE_CLUSTER' : 'REQUIRE_SERVICES';
  if (process.env[required] === '1') throw new Error(`${required}=1 but ${reason}`);
  return reason;
}

export function serviceUrl(name: ServiceVar): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** A name no other test run uses, for queues and databases. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * A test's own topology, as the services declare it by default but for its names: its exchange is
 * named as its queue, so no other test's events reach it.
 */
export function testTopology(queueName: string, overrides: Partial<TopologyOptions> = {}): TopologyOptions {
  return { exchange: queueName, queueName, queueType: 'quorum', deliveryLimit: 10, replicas: 1, partitions: 1, ...overrides };
}

/**
 * Deletes what a test declared for `queue` with testTopology(queue) or QUEUE_NAME=EVENTS_EXCHANGE=queue:
 * its queues (with `partitions`, each partition's), their dead-letter queues and its exchanges.
 */
export async function deleteTopology(queue: string, partitions = 1): Promise<void> {
  const stream = partitions === 1 ? [queue] : Array.from({ length: partitions }, (_, index) => `${queue}.${index}`);
  await deleteQueues(...stream.flatMap((name) => [name, `${name}.dead`]));
  const connection = await amqp.connect(serviceUrl('RABBITMQ_URL'));
  try {
    const channel = await connection.createChannel();
    for (const exchange of [queue, `${queue}.partitions`]) await channel.deleteExchange(exchange);
  } finally {
    await connection.close().catch(() => {});
  }
}

/**
 * Deletes `queues` over a connection of its own, closed whatever happens: a cleanup that reused a
 * test's channel would fail, and leave that connection holding the test process open, whenever the
 * test had lost it.
 */
export async function deleteQueues(...queues: string[]): Promise<void> {
  const connection = await amqp.connect(serviceUrl('RABBITMQ_URL'));
  try {
    const channel = await connection.createChannel();
    for (const queue of queues) await channel.deleteQueue(queue);
  } finally {
    await connection.close().catch(() => {});
  }
}
