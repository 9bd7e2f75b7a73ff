// The RabbitMQ side of the consumer: one connection and one channel, re-established with capped
// exponential back-off whenever either closes, and a consumer that runs only while `canConsume()`
// says the store can take more.
//
// amqplib 2.x has opt-in connection recovery (`connect(url, { recovery })`), but it re-opens the
// connection only: a channel the broker closes on its own (consumer_timeout, PRECONDITION_FAILED)
// leaves the connection up and is not recovered. One loop that rebuilds both covers every case.
import amqp, { type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Message, type Options } from 'amqplib';
import { CONNECT_TIMEOUT_MS, closeWithin, withHeartbeat } from '@event-tracker/common/amqp.ts';
import { backoffDelay, type BackoffOptions } from '@event-tracker/common/backoff.ts';
import { sleep, systemClock, type Clock } from '@event-tracker/common/clock.ts';
import type { Logger } from '@event-tracker/common/logger.ts';
import type { AckChannel, Delivery } from './services/settler.ts';
import { assertTopology, deadLetterQueueName, type TopologyOptions } from '@event-tracker/common/topology.ts';

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
  readonly connection: ChannelModel;
  readonly channel: ConfirmChannel;
  readonly acks: AckChannel & { open: boolean };
  consumerTag?: string;
}

export class Broker {
  readonly #options: BrokerOptions;
  #session: Session | undefined;
  #running: Promise<void> | undefined;
  #consuming = true;
  /** Aborted by close(): ends the reconnect loop and the back-off wait in progress. */
  readonly #closing = new AbortController();
  /** Subscribe and cancel calls run one at a time, so two refreshes cannot subscribe twice. */
  #sync: Promise<void> = Promise.resolve();

  constructor(options: BrokerOptions) {
    this.#options = options;
  }

  get #closed(): boolean {
    return this.#closing.signal.aborted;
  }

  get channelOpen(): boolean {
    return this.#session?.acks.open ?? false;
  }

  /** True while our consumer is subscribed, so the broker may deliver. */
  get consuming(): boolean {
    return this.channelOpen && this.#session?.consumerTag !== undefined;
  }

  /** Connects in the background, and again after every loss, until close(). */
  start(): void {
    this.#running ??= this.#run();
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
    this.#closing.abort();
    this.#consuming = false;
    await this.#closeSession();
    await this.#running;
  }

  async #closeSession(): Promise<void> {
    const session = this.#session;
    if (!session) return;
    await closeWithin(session.channel, () => session.channel.close());
    await closeWithin(session.connection, () => session.connection.close());
  }

  async #run(): Promise<void> {
    const { logger, retry } = this.#options;
    let failures = 0;
    while (!this.#closed) {
      try {
        const { lost } = await this.#open();
        failures = 0;
        // close() may have run while we were connecting, before there was a session to close.
        if (this.#closed) await this.#closeSession();
        await lost;
      } catch (err) {
        failures += 1;
        logger.warn('could not connect to the broker', { err });
      }
      this.#session = undefined;
      if (this.#closed) break;
      const delayMs = backoffDelay(failures + 1, retry);
      logger.info('reconnecting to the broker', { delayMs });
      await sleep(this.#options.clock ?? systemClock, delayMs, this.#closing.signal);
    }
  }

  /**
   * Opens a session. `lost` settles when its connection or channel is gone. It comes wrapped in an
   * object because an async function returning a promise adopts it: returned bare, the caller's
   * await would last until the connection was lost, and a close() made while connecting would
   * never close the session it was waiting for.
   */
  async #open(): Promise<{ lost: Promise<void> }> {
    const { logger, prefetch, topology } = this.#options;
    const connection = await amqp.connect(withHeartbeat(this.#options.url, this.#options.heartbeatSeconds), { timeout: CONNECT_TIMEOUT_MS, clientProperties: { connection_name: 'event-tracker-consumer' } });
    let acks: Session['acks'] | undefined;
    let markLost: () => void = () => {};
    const lost = new Promise<void>((resolve) => (markLost = resolve));
    const end = (what: string) => {
      // From here on the deliveries we hold are void: the broker requeues them itself.
      if (acks) acks.open = false;
      if (this.#closed) logger.info(`broker ${what} closed`);
      else logger.warn(`broker ${what} closed`);
      void connection.close().catch(() => {});
      markLost();
    };
    // 'error' is always followed by 'close'; an 'error' event without a listener would crash the process.
    connection.on('error', (err: Error) => logger.warn('broker connection error', { err }));
    connection.on('close', () => end('connection'));
    try {
      // A confirm channel, so a dead-letter copy is acked only once the broker has it.
      const channel = await connection.createConfirmChannel();
      acks = ackChannel(channel, deadLetterQueueName(topology.queueName), logger);
      channel.on('error', (err: Error) => logger.warn('broker channel error', { err }));
      channel.on('close', () => end('channel'));
      await channel.prefetch(prefetch);
      await assertTopology(channel, topology);
      this.#session = { connection, channel, acks };
      logger.info('connected to the broker', { queue: topology.queueName, prefetch });
      await this.refresh();
      return { lost };
    } catch (err) {
      await connection.close().catch(() => {});
      throw err;
    }
  }

  async #apply(): Promise<void> {
    const session = this.#session;
    if (!session || !session.acks.open) return;
    const wanted = this.#consuming && !this.#closed && this.#options.canConsume();
    if (wanted && !session.consumerTag) {
      const onMessage = (message: ConsumeMessage | null) => this.#deliver(session, message);
      session.consumerTag = (await session.channel.consume(this.#options.topology.queueName, onMessage, { noAck: false })).consumerTag;
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
    void session.connection.close().catch(() => {});
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
