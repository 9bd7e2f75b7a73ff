// Queue topology, declared identically by the API and the consumer: the broker closes the channel
// (PRECONDITION_FAILED) when two declarations of one queue differ.
import type { Channel } from 'amqplib';

export type QueueType = 'quorum' | 'classic';

export interface TopologyOptions {
  readonly queueName: string;
  readonly queueType: QueueType;
  /** Quorum queues only: deliveries after which a message is dead-lettered instead of requeued. */
  readonly deliveryLimit: number;
}

export function deadLetterQueueName(queueName: string): string {
  return `${queueName}.dead`;
}

/** The `x-` arguments of the main queue. */
export function queueArguments(options: TopologyOptions): Record<string, unknown> {
  const deadLettering = {
    'x-dead-letter-exchange': '',
    'x-dead-letter-routing-key': deadLetterQueueName(options.queueName),
  };
  if (options.queueType === 'classic') return deadLettering;
  return {
    'x-queue-type': 'quorum',
    'x-delivery-limit': options.deliveryLimit,
    // At-least-once dead-lettering (RabbitMQ >= 3.10) requires the reject-publish overflow mode.
    'x-dead-letter-strategy': 'at-least-once',
    'x-overflow': 'reject-publish',
    ...deadLettering,
  };
}

/** Declares the dead-letter queue first, so nothing dead-lettered is ever unroutable. */
export async function assertTopology(channel: Channel, options: TopologyOptions): Promise<void> {
  const deadArguments = options.queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : {};
  await channel.assertQueue(deadLetterQueueName(options.queueName), { durable: true, arguments: deadArguments });
  await channel.assertQueue(options.queueName, { durable: true, arguments: queueArguments(options) });
}
