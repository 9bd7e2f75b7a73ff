// The broker topology, as data. The API publishes to a durable topic exchange (EVENTS_EXCHANGE)
// with the event's type as routing key; downstream teams bind their own queues to it. Behind it,
// the stored stream the consumer drains: one queue bound with `#`, or QUEUE_PARTITIONS queues
// behind a headers exchange that routes on the partition the API computed from the userId. Every
// stored queue has its own dead-letter queue.
//
// Both services declare the whole of it: the API so that a 202 never depends on the consumer having
// started once, the consumer so that it can drain without the API. Declarations are idempotent and
// both read them from the same settings (common/src/env.ts).
import type { Channel, ChannelModel } from 'amqplib';
import type { Logger } from '../logger.ts';
import { closeWithin } from './connect.ts';

export type QueueType = 'quorum' | 'classic';

export interface TopologyOptions {
  /** The topic exchange the API publishes to. */
  readonly exchange: string;
  readonly queueName: string;
  readonly queueType: QueueType;
  /** Quorum queues only: deliveries after which a message is dead-lettered instead of requeued. */
  readonly deliveryLimit: number;
  /** Quorum queues only: members of a new queue (a broker with fewer nodes gives it fewer). */
  readonly replicas: number;
  /** 1: the one queue `queueName`; N > 1: `queueName.0` … `queueName.N-1`. */
  readonly partitions: number;
}

/**
 * The dead-letter queues' own delivery limit. They have no dead-letter target, so a message over
 * the limit would be dropped; RabbitMQ 4 gives quorum queues a default of 20 that a few failed
 * replays could reach. Set explicitly and high: nothing here redelivers a dead letter on purpose.
 */
export const DEAD_LETTER_DELIVERY_LIMIT = 1_000_000;

/** The header the API sets and the partition exchange routes on (only when partitions > 1). */
export const PARTITION_HEADER = 'partition';

/** AMQP routing keys are short strings: at most 255 bytes. */
const MAX_ROUTING_KEY_BYTES = 255;

export function deadLetterQueueName(queueName: string): string {
  return `${queueName}.dead`;
}

/** The queues that hold the stored stream, in partition order. */
export function streamQueues(options: Pick<TopologyOptions, 'queueName' | 'partitions'>): string[] {
  if (options.partitions === 1) return [options.queueName];
  return Array.from({ length: options.partitions }, (_, index) => `${options.queueName}.${index}`);
}

export function partitionExchangeName(queueName: string): string {
  return `${queueName}.partitions`;
}

/**
 * The partition of a user's events: FNV-1a over the UTF-16 code units, so every runtime and
 * release agrees, and one user's events stay in one queue, in order.
 */
export function partitionOf(userId: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) {
    hash ^= userId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}

/**
 * The routing key of an event: its type. An eventType may be 255 characters, which can exceed
 * the 255 bytes AMQP allows, so a longer one is cut at the last whole character that fits.
 */
export function routingKey(eventType: string): string {
  if (eventType.length <= MAX_ROUTING_KEY_BYTES / 3 || Buffer.byteLength(eventType) <= MAX_ROUTING_KEY_BYTES) return eventType;
  let cut = '';
  for (const char of eventType) {
    if (Buffer.byteLength(cut + char) > MAX_ROUTING_KEY_BYTES) break;
    cut += char;
  }
  return cut;
}

export interface QueueDeclaration {
  readonly name: string;
  readonly arguments: Readonly<Record<string, unknown>>;
}

export type Binding =
  | { readonly kind: 'queue'; readonly queue: string; readonly exchange: string; readonly pattern: string; readonly arguments?: Record<string, string> }
  | { readonly kind: 'exchange'; readonly destination: string; readonly exchange: string; readonly pattern: string };

export interface TopologyPlan {
  readonly exchanges: ReadonlyArray<{ readonly name: string; readonly type: 'topic' | 'headers' }>;
  /** Each dead-letter queue before its queue, so nothing dead-lettered is ever unroutable. */
  readonly queues: readonly QueueDeclaration[];
  readonly bindings: readonly Binding[];
}

/** The `x-` arguments of a stored queue. */
export function queueArguments(options: TopologyOptions, queue: string): Record<string, unknown> {
  const deadLettering = { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': deadLetterQueueName(queue) };
  if (options.queueType === 'classic') return deadLettering;
  return {
    ...replicated(options),
    'x-delivery-limit': options.deliveryLimit,
    // At-least-once dead-lettering (RabbitMQ >= 3.10) requires the reject-publish overflow mode.
    'x-dead-letter-strategy': 'at-least-once',
    'x-overflow': 'reject-publish',
    ...deadLettering,
  };
}

function replicated(options: TopologyOptions): Record<string, unknown> {
  return {
    'x-queue-type': 'quorum',
    'x-quorum-initial-group-size': options.replicas,
    // Each new queue's leader on the node with the fewest leaders, so partitions spread out.
    'x-queue-leader-locator': 'balanced',
  };
}

export function topologyPlan(options: TopologyOptions): TopologyPlan {
  const queues = streamQueues(options);
  const deadArguments = options.queueType === 'quorum' ? { ...replicated(options), 'x-delivery-limit': DEAD_LETTER_DELIVERY_LIMIT } : {};
  const declarations = queues.flatMap((queue) => [
    { name: deadLetterQueueName(queue), arguments: deadArguments },
    { name: queue, arguments: queueArguments(options, queue) },
  ]);
  if (options.partitions === 1) {
    return {
      exchanges: [{ name: options.exchange, type: 'topic' }],
      queues: declarations,
      bindings: [{ kind: 'queue', queue: options.queueName, exchange: options.exchange, pattern: '#' }],
    };
  }
  const partitions = partitionExchangeName(options.queueName);
  return {
    exchanges: [
      { name: options.exchange, type: 'topic' },
      { name: partitions, type: 'headers' },
    ],
    queues: declarations,
    bindings: [
      { kind: 'exchange', destination: partitions, exchange: options.exchange, pattern: '#' },
      ...queues.map((queue, index): Binding => ({ kind: 'queue', queue, exchange: partitions, pattern: '', arguments: { 'x-match': 'all', [PARTITION_HEADER]: String(index) } })),
    ],
  };
}

/** Declares the whole topology on `channel`; a queue that exists with other arguments fails it. */
export async function assertTopology(channel: Channel, options: TopologyOptions): Promise<void> {
  const plan = topologyPlan(options);
  for (const { name, type } of plan.exchanges) await channel.assertExchange(name, type, { durable: true });
  for (const queue of plan.queues) await channel.assertQueue(queue.name, { durable: true, arguments: queue.arguments });
  await bind(channel, plan.bindings);
}

/**
 * Declares the topology as the services do at every connect, on channels of its own. A queue that
 * already exists with other arguments (declared by an earlier release, or with another QUEUE_TYPE)
 * is used as it is, with a warning naming the difference: RabbitMQ refuses to change a queue's
 * arguments (PRECONDITION_FAILED), and refusing to start would stop ingestion over a setting that
 * only applies to new queues. README's queue migration section says how to recreate one.
 */
export async function declareTopology(connection: ChannelModel, options: TopologyOptions, logger: Logger): Promise<void> {
  const plan = topologyPlan(options);
  let channel = await scratchChannel(connection);
  try {
    for (const { name, type } of plan.exchanges) await channel.assertExchange(name, type, { durable: true });
    for (const queue of plan.queues) {
      try {
        await channel.assertQueue(queue.name, { durable: true, arguments: queue.arguments });
      } catch (err) {
        if ((err as { code?: unknown }).code !== PRECONDITION_FAILED) throw err;
        logger.warn('queue exists with other arguments than configured; using it as it is', { queue: queue.name, broker: (err as Error).message });
        // The broker closed the channel with its refusal.
        channel = await scratchChannel(connection);
      }
    }
    await bind(channel, plan.bindings);
  } finally {
    await closeWithin(channel, () => channel.close());
  }
}

const PRECONDITION_FAILED = 406;

async function scratchChannel(connection: ChannelModel): Promise<Channel> {
  const channel = await connection.createChannel();
  // A refused declare closes the channel with an 'error' event, answered by the rejected call.
  channel.on('error', () => {});
  return channel;
}

async function bind(channel: Channel, bindings: readonly Binding[]): Promise<void> {
  for (const binding of bindings) {
    if (binding.kind === 'queue') await channel.bindQueue(binding.queue, binding.exchange, binding.pattern, binding.arguments);
    else await channel.bindExchange(binding.destination, binding.exchange, binding.pattern);
  }
}
