// The RabbitMQ side of the consumer: a broker session (common/src/brokerSession.ts) whose channel
// carries a consumer that runs only while `canConsume()` says the store can take more. A session
// counts as working once basic.consume succeeds, so a broker that refuses it is retried ever more
// slowly.
import type { ConfirmChannel, ConsumeMessage, Message, Options } from 'amqplib';
import type { BackoffOptions } from '@event-tracker/common/backoff.ts';
import { BrokerSession } from '@event-tracker/common/brokerSession.ts';
import type { Clock } from '@event-tracker/common/clock.ts';
import type { Logger } from '@event-tracker/common/logger.ts';
import { deadLetterQueueName, type TopologyOptions } from '@event-tracker/common/topology.ts';
import type { AckChannel, Delivery } from './services/settler.ts';

export interface BrokerOptions {
  readonly url: string;
  readonly heartbeatSeconds: number;
  readonly prefetch: number;
  readonly topology: TopologyOptions;
  readonly retry: BackoffOptions;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Consulted before subscribing and on refresh(): false while the store is down. */
  readonly canConsume: () => boolean;
  readonly onDelivery: (delivery: Delivery) => void;
}

interface Session {
  readonly channel: ConfirmChannel;
  readonly acks: AckChannel & { open: boolean };
  consumerTag?: string;
}

export class Broker {
  readonly #options: BrokerOptions;
  readonly #session: BrokerSession;
  #current: Session | undefined;
  #consuming = true;
  #closed = false;
  /** Subscribe and cancel calls run one at a time, so two refreshes cannot subscribe twice. */
  #sync: Promise<void> = Promise.resolve();

  constructor(options: BrokerOptions) {
    this.#options = options;
    const { prefetch, logger, topology } = options;
    this.#session = new BrokerSession({
      ...options,
      connectionName: 'event-tracker-consumer',
      handlers: {
        opened: async (channel) => {
          await channel.prefetch(prefetch);
          // A confirm channel, so a dead-letter copy is acked only once the broker has it.
          this.#current = { channel, acks: ackChannel(channel, deadLetterQueueName(topology.queueName), logger) };
          await this.refresh();
        },
        lost: () => {
          // From here on the deliveries we hold are void: the broker requeues them itself.
          if (this.#current) this.#current.acks.open = false;
          this.#current = undefined;
        },
      },
    });
  }

  get channelOpen(): boolean {
    return this.#current?.acks.open ?? false;
  }

  /** True while our consumer is subscribed, so the broker may deliver. */
  get consuming(): boolean {
    return this.channelOpen && this.#current?.consumerTag !== undefined;
  }

  /** Connects in the background, and again after every loss, until close(). */
  start(): void {
    this.#session.start();
  }

  /** Subscribes or cancels so that consumption matches `canConsume()`. */
  refresh(): Promise<void> {
    this.#sync = this.#sync.then(() => this.#apply()).catch((err: unknown) => this.#options.logger.warn('could not change the subscription', { err }));
    return this.#sync;
  }

  /** Cancels the consumer for good (shutdown); the channel stays open to ack what is in hand. */
  stopConsuming(): Promise<void> {
    this.#consuming = false;
    return this.refresh();
  }

  /** Closes the channel, then the connection, and stops reconnecting. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#consuming = false;
    await this.#session.close();
  }

  async #apply(): Promise<void> {
    const session = this.#current;
    if (!session || !session.acks.open) return;
    const wanted = this.#consuming && !this.#closed && this.#options.canConsume();
    if (wanted && !session.consumerTag) {
      const onMessage = (message: ConsumeMessage | null) => this.#deliver(session, message);
      session.consumerTag = (await session.channel.consume(this.#options.topology.queueName, onMessage, { noAck: false })).consumerTag;
      this.#session.worked();
      this.#options.logger.info('consuming', { queue: this.#options.topology.queueName });
    } else if (!wanted && session.consumerTag) {
      const tag = session.consumerTag;
      session.consumerTag = undefined;
      await session.channel.cancel(tag);
      this.#options.logger.info('consumer cancelled', { queue: this.#options.topology.queueName });
    }
  }

  #deliver(session: Session, message: ConsumeMessage | null): void {
    if (message) return this.#options.onDelivery({ message, channel: session.acks });
    // The broker cancelled us (the queue was deleted, for one): start over, which re-declares it.
    this.#options.logger.warn('consumer cancelled by the broker; reconnecting');
    session.consumerTag = undefined;
    void session.channel.close().catch(() => {});
  }
}

/**
 * Acks and dead-letters on a channel that may close at any moment: a lost ack means a redelivery,
 * never an error.
 */
function ackChannel(channel: ConfirmChannel, deadLetterQueue: string, logger: Logger): AckChannel & { open: boolean } {
  const guarded = (what: string, send: () => void) => {
    try {
      send();
    } catch (err) {
      logger.debug(`${what} lost with its channel; the broker redelivers the message`, { err });
    }
  };
  return {
    open: true,
    ack: (message) => guarded('ack', () => channel.ack(message)),
    nack: (message, allUpTo, requeue) => guarded('nack', () => channel.nack(message, allUpTo, requeue)),
    deadLetter: (message, headers) =>
      new Promise((resolve) => {
        try {
          channel.sendToQueue(deadLetterQueue, message.content, deadLetterProperties(message, headers), (err) => resolve(!err));
        } catch (err) {
          // amqplib throws synchronously on a channel that is closing.
          logger.debug('dead-letter copy lost with its channel; the broker redelivers the message', { err });
          resolve(false);
        }
      }),
  };
}

/**
 * The original's properties that describe its content, plus `headers`. Not `expiration` (the copy
 * must not expire) nor `userId` (the broker checks it against this connection's user).
 */
function deadLetterProperties(message: Message, headers: Readonly<Record<string, string>>): Options.Publish {
  const { contentType, contentEncoding, messageId, timestamp, type, appId, correlationId } = message.properties as Message['properties'] & { timestamp?: number };
  const kept = { contentType, contentEncoding, messageId, timestamp, type, appId, correlationId };
  return {
    ...Object.fromEntries(Object.entries(kept).filter(([, value]) => value !== undefined)),
    persistent: true,
    headers: { ...message.properties.headers, ...headers },
  };
}
