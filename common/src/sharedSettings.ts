// The settings both services read, with their defaults, defined once: the API and the consumer
// cannot accept different values for them, nor default them differently.
import { parseNodeList, type BrokerNode } from './broker/nodes.ts';
import type { QueueType, TopologyOptions } from './broker/topology.ts';
import type { EnvReader } from './env.ts';
import type { LevelName } from './logger.ts';

/** Each service's DEFAULTS starts with these. */
export const SHARED_DEFAULTS = {
  QUEUE_NAME: 'user_activities',
  QUEUE_TYPE: 'quorum',
  QUEUE_DELIVERY_LIMIT: 10,
  QUEUE_REPLICAS: 3,
  QUEUE_PARTITIONS: 1,
  EVENTS_EXCHANGE: 'activities',
  AMQP_HEARTBEAT_SECONDS: 5,
  SHUTDOWN_TIMEOUT_MS: 10_000,
  LOG_LEVEL: 'info',
} as const;

/** What both services read the same way: the broker, the queue topology, shutdown and logging. */
export interface SharedSettings {
  readonly brokerNodes: readonly BrokerNode[];
  readonly topology: TopologyOptions;
  readonly heartbeatSeconds: number;
  readonly shutdownTimeoutMs: number;
  readonly logLevel: LevelName;
}

const QUEUE_TYPES: readonly QueueType[] = ['quorum', 'classic'];
const LOG_LEVELS: readonly LevelName[] = ['debug', 'info', 'warn', 'error', 'fatal'];

/** AMQP names are at most 255 bytes; the longest suffix a queue name gets is ".partitions". */
const MAX_QUEUE_NAME_BYTES = 240;

export function readSharedSettings(read: EnvReader): SharedSettings {
  // The URLs carry credentials, so no message repeats them.
  const nodeList = read.required('RABBITMQ_URL', 'an amqp:// or amqps:// URL, or a comma-separated list of them');
  const { nodes, problems } = nodeList === '' ? { nodes: [], problems: [] } : parseNodeList(nodeList);
  for (const problem of problems) read.fail('RABBITMQ_URL', problem);

  const queueName = read.text('QUEUE_NAME');
  if (Buffer.byteLength(queueName) > MAX_QUEUE_NAME_BYTES || queueName === '' || queueName.startsWith('amq.')) {
    read.fail('QUEUE_NAME', `QUEUE_NAME must be 1 to ${MAX_QUEUE_NAME_BYTES} bytes and not start with "amq." (got "${queueName}")`);
  }
  const exchange = read.text('EVENTS_EXCHANGE');
  // "" is the default exchange, which cannot be bound to; "amq." names are reserved by the broker.
  if (Buffer.byteLength(exchange) > 255 || exchange === '' || exchange.startsWith('amq.')) {
    read.fail('EVENTS_EXCHANGE', `EVENTS_EXCHANGE must be 1 to 255 bytes and not start with "amq." (got "${exchange}")`);
  }
  return {
    brokerNodes: nodes,
    topology: Object.freeze({
      exchange,
      queueName,
      queueType: read.oneOf('QUEUE_TYPE', QUEUE_TYPES),
      deliveryLimit: read.integer('QUEUE_DELIVERY_LIMIT', 1, 1_000_000),
      // RabbitMQ advises odd sizes up to 7: more members add write latency, not safety.
      replicas: read.integer('QUEUE_REPLICAS', 1, 7),
      partitions: read.integer('QUEUE_PARTITIONS', 1, 64),
    }),
    heartbeatSeconds: read.integer('AMQP_HEARTBEAT_SECONDS', 1, 3_600),
    shutdownTimeoutMs: read.integer('SHUTDOWN_TIMEOUT_MS', 0, 600_000),
    logLevel: read.oneOf('LOG_LEVEL', LOG_LEVELS),
  };
}
