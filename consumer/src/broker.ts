// The RabbitMQ side of the consumer: a broker session (common/src/broker/session.ts) whose channel
// carries one consumer per queue of the stored stream, running only while `canConsume()` says the
// store can take more. A session counts as working once basic.consume succeeds, so a broker that
// refuses it is retried ever more slowly.
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { BackoffOptions } from '@event-tracker/common/backoff.ts';
import { deadLetterProperties } from '@event-tracker/common/broker/deadLetters.ts';
import type { BrokerNode } from '@event-tracker/common/broker/nodes.ts';
import { BrokerSession } from '@event-tracker/common/broker/session.ts';
import { deadLetterQueueName, streamQueues, type TopologyOptions } from '@event-tracker/common/broker/topology.ts';
import type { Clock } from '@event-tracker/common/clock.ts';
import type { Logger } from '@event-tracker/common/logger.ts';
import { Acks } from './acks.ts';
import type { AckChannel, Delivery } from './services/settler.ts';

export interface BrokerOptions {
  readonly nodes: readonly BrokerNode[];
  readonly heartbeatSeconds: number;
  /** Unacked deliveries per queue consumed. */
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
  open: boolean;
  /** Delivery tags are the channel's, shared by its consumers: one ack gatherer for them all. */
  readonly acks: Acks;
  /** One consumer tag per stream queue while subscribed; empty while not. */
  consumerTags: string[];
}

export class Broker {
  readonly #options: BrokerOptions;
  readonly #session: BrokerSession;
  readonly #queues: readonly string[];
  #current: Session | undefined;
  #consuming = true;
  #closed = false;
  /** Subscribe and cancel calls run one at a time, so two refreshes cannot subscribe twice. */
  #sync: Promise<void> = Promise.resolve();

  constructor(options: BrokerOptions) {
    this.#options = options;
    this.#queues = streamQueues(options.topology);
    this.#session = new BrokerSession({
      ...options,
      connectionName: 'event-tracker-consumer',
      handlers: {
        opened: async (channel) => {
          await channel.prefetch(options.prefetch);
          this.#current = { channel, open: true, acks: ackGatherer(channel, options.logger), consumerTags: [] };
          await this.refresh();
        },
        lost: () => {
          // From here on the deliveries we hold are void: the broker requeues them itself.
          if (this.#current) this.#current.open = false;
          this.#current = undefined;
        },
      },
    });
  }

  get channelOpen(): boolean {
    return this.#current?.open ?? false;
  }

  /** True while our consumers are subscribed, so the broker may deliver. */
  get consuming(): boolean {
    return this.channelOpen && (this.#current?.consumerTags.length ?? 0) > 0;
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

  /** Cancels the consumers for good (shutdown); the channel stays open to ack what is in hand. */
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
    if (!session || !session.open) return;
    const wanted = this.#consuming && !this.#closed && this.#options.canConsume();
    if (wanted && session.consumerTags.length === 0) {
      for (const queue of this.#queues) {
        // A confirm channel, so a dead-letter copy is acked only once the broker has it.
        const acks = ackChannel(session, deadLetterQueueName(queue), this.#options.logger);
        const onMessage = (message: ConsumeMessage | null) => this.#deliver(session, acks, message);
        session.consumerTags.push((await session.channel.consume(queue, onMessage, { noAck: false })).consumerTag);
      }
      this.#session.worked();
      this.#options.logger.info('consuming', { queues: this.#queues });
    } else if (!wanted && session.consumerTags.length > 0) {
      const tags = session.consumerTags;
      session.consumerTags = [];
      for (const tag of tags) await session.channel.cancel(tag);
      this.#options.logger.info('consumers cancelled', { queues: this.#queues });
    }
  }

  #deliver(session: Session, acks: AckChannel, message: ConsumeMessage | null): void {
    if (message) {
      session.acks.delivered(message);
      return this.#options.onDelivery({ message, channel: acks });
    }
    // The broker cancelled us (a queue was deleted, for one): start over, which re-declares it.
    this.#options.logger.warn('consumer cancelled by the broker; reconnecting');
    session.consumerTags = [];
    void session.channel.close().catch(() => {});
  }
}

/** Acks that a channel closing at any moment can lose: a lost ack means a redelivery, never an error. */
function ackGatherer(channel: ConfirmChannel, logger: Logger): Acks {
  const guarded = (what: string, send: () => void) => {
    try {
      send();
    } catch (err) {
      logger.debug(`${what} lost with its channel; the broker redelivers the message`, { err });
    }
  };
  return new Acks({
    ack: (message, allUpTo) => guarded('ack', () => channel.ack(message, allUpTo)),
    nack: (message, allUpTo, requeue) => guarded('nack', () => channel.nack(message, allUpTo, requeue)),
  });
}

/**
 * Acks and dead-letters on a channel that may close at any moment: a lost ack means a redelivery,
 * never an error. Each stored queue has its own dead-letter queue.
 */
function ackChannel(session: Session, deadLetterQueue: string, logger: Logger): AckChannel {
  const { channel, acks } = session;
  return {
    get open() {
      return session.open;
    },
    ack: (message) => acks.ack(message),
    nack: (message, _allUpTo, requeue) => acks.nack(message, requeue),
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
