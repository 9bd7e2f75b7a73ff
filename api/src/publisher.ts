// Publishing one event and learning its fate. An event is accepted only when RabbitMQ confirms it
// and did not return it as unroutable; every publish ends within `publishTimeoutMs` (deadlines.ts).
import type { Message, Options } from 'amqplib';
import type { QueueMessage } from '@event-tracker/shared';
import { PARTITION_HEADER, partitionOf, routingKey } from '@event-tracker/common/broker/topology.ts';
import { Deadlines, type Deadline } from './deadlines.ts';
import { PublishOutcomeUnknown, QueueUnavailable, batchFailure, type PublishFailed } from './errors.ts';

export interface Publisher {
  /**
   * Resolves once the broker has confirmed the message. Rejects with QueueUnavailable when it was
   * not sent or the broker refused it, and with PublishOutcomeUnknown when it was sent but never
   * confirmed (the broker may hold it).
   */
  publish(message: QueueMessage, receivedAt: Date): Promise<void>;
  /**
   * Publishes every message concurrently and resolves once each is confirmed; one failure fails the
   * batch (see ConfirmPublisher.publishAll).
   */
  publishAll(messages: readonly QueueMessage[], receivedAt: Date): Promise<void>;
  /** True while a channel is open and the broker is not blocking publishers. */
  isReady(): boolean;
  /** Publishes sent (or waiting to be sent) and not yet answered by the broker. */
  readonly unconfirmed: number;
}

/** The part of an amqplib ConfirmChannel this module uses; tests fake it. */
export interface PublishChannel {
  publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish, callback: (err: unknown) => void): boolean;
  on(event: 'return', listener: (message: Message) => void): unknown;
  on(event: 'drain' | 'close', listener: () => void): unknown;
}

export interface PublisherOptions {
  /** EVENTS_EXCHANGE: every event is published there, its type as routing key. */
  readonly exchange: string;
  /** QUEUE_PARTITIONS: above 1, each event carries its partition for the stream's headers exchange. */
  readonly partitions: number;
  readonly publishTimeoutMs: number;
  /** Publishes awaiting a confirm (or waiting to be sent) beyond which new ones are refused. */
  readonly maxUnconfirmed: number;
  /** Monotonic milliseconds for the publish deadlines (default performance.now); tests step a mocked Date. */
  readonly now?: () => number;
}

/**
 * Publishes on whichever channel the broker connection last attached. Between a connection loss
 * and the next attach() there is no channel, and publish() fails at once.
 */
export class ConfirmPublisher implements Publisher {
  readonly #options: PublisherOptions;
  readonly #deadlines: Deadlines;
  #channel: PublishChannel | null = null;
  #blocked = false;
  /** Set when the channel's write buffer is full; later publishes wait for 'drain'. */
  #saturated = false;
  #waitingForDrain: Array<() => void> = [];
  /** Publishes sent (or waiting to be sent) that the broker has not answered: a count, as no Set is kept per publish (deadlines.ts says why). */
  #unconfirmed = 0;
  /** Message ids the broker returned as unroutable, until the confirm of that message arrives. */
  readonly #returned = new Set<string>();
  #onConfirm: () => void = () => {};
  #onNack: () => void = () => {};

  constructor(options: PublisherOptions) {
    this.#options = options;
    this.#deadlines = new Deadlines(options.publishTimeoutMs, options.now);
  }

  isReady(): boolean {
    return this.#channel !== null && !this.#blocked;
  }

  get unconfirmed(): number {
    return this.#unconfirmed;
  }

  /**
   * Publishes on `channel` from now on; `onConfirm` hears of every confirm the broker sends on it,
   * `onNack` of every publish the broker refused (basic.nack).
   */
  attach(channel: PublishChannel, onConfirm: () => void = () => {}, onNack: () => void = () => {}): void {
    this.#channel = channel;
    this.#onConfirm = onConfirm;
    this.#onNack = onNack;
    this.#blocked = false;
    this.#saturated = false;
    this.#returned.clear();
    // RabbitMQ sends basic.return before the basic.ack of the same message, so marking the
    // message's id here turns its confirm into a failure. A return carries no delivery tag, only
    // our messageId: of two in-flight publishes with that id, the first confirmed fails, which at
    // worst asks a client to retry.
    channel.on('return', (message) => this.#returned.add(String(message.properties.messageId)));
    channel.on('drain', () => this.#releaseDrainWaiters(channel));
    // amqplib fails every unconfirmed callback when a channel closes; nothing else to settle here.
    channel.on('close', () => this.detach(channel));
  }

  detach(channel: PublishChannel): void {
    if (this.#channel !== channel) return;
    this.#channel = null;
    this.#releaseDrainWaiters(channel);
  }

  /** The connection's `blocked`/`unblocked`: a broker resource alarm stops all publishing. */
  setBlocked(blocked: boolean): void {
    this.#blocked = blocked;
  }

  publish(message: QueueMessage, receivedAt: Date): Promise<void> {
    const channel = this.#channel;
    const { id } = message;
    if (channel === null) return Promise.reject(new QueueUnavailable('not-connected', 'the broker connection is down', id));
    if (this.#blocked) return Promise.reject(new QueueUnavailable('blocked', 'the broker is refusing publishes (resource alarm)', id));
    if (this.#unconfirmed >= this.#options.maxUnconfirmed) {
      return Promise.reject(new QueueUnavailable('over-capacity', 'too many events are waiting for the broker', id));
    }

    // Counted until the broker answers, even past a timeout: the channel still holds it.
    this.#unconfirmed += 1;
    return this.#untilAnswered(channel, message, encodeMessage(message, receivedAt, this.#options.partitions));
  }

  /**
   * Sends the message on `channel`, at once or on 'drain', and settles with the broker's answer,
   * or with the deadline's when the broker does not answer in time.
   */
  #untilAnswered(channel: PublishChannel, message: QueueMessage, { content, properties }: ReturnType<typeof encodeMessage>): Promise<void> {
    const { exchange, publishTimeoutMs } = this.#options;
    const { id } = message;
    return new Promise((resolve, reject) => {
      let settled = false;
      let sent = false;
      const settle = (error?: Error): void => {
        if (settled) return;
        settled = true;
        this.#deadlines.cancel(deadline);
        if (error === undefined) resolve();
        else reject(error);
      };
      const deadline: Deadline = this.#deadlines.start(() => {
        const late = `within ${publishTimeoutMs} ms`;
        // Still waiting for 'drain', it was never sent (send() sees `settled` and drops it).
        settle(sent ? new PublishOutcomeUnknown('confirm-timeout', `no broker confirm ${late}`, id) : new QueueUnavailable('no-room', `the broker connection had no room for it ${late}`, id));
      });

      const send = (): void => {
        if (settled || this.#channel !== channel) {
          this.#unconfirmed -= 1;
          settle(new QueueUnavailable('connection-lost', 'the broker connection was lost', id));
          return;
        }
        const onConfirm = this.#onConfirm;
        const onNack = this.#onNack;
        try {
          sent = true;
          const writable = channel.publish(exchange, routingKey(message.eventType), content, properties, (err) => {
            this.#unconfirmed -= 1;
            const returned = this.#returned.size > 0 && this.#returned.delete(id);
            if (err) {
              const failure = confirmFailure(err, id);
              if (failure instanceof QueueUnavailable) onNack();
              settle(failure);
            }
            else if (returned) settle(new QueueUnavailable('returned', 'no queue took the event', id));
            else {
              onConfirm();
              settle();
            }
          });
          if (!writable) this.#saturated = true;
        } catch (error) {
          // amqplib throws synchronously on a channel that is closing, before anything is written.
          sent = false;
          this.#unconfirmed -= 1;
          settle(new QueueUnavailable('channel-closing', 'the broker channel is closing', id, error));
        }
      };

      if (this.#saturated) this.#waitingForDrain.push(send);
      else send();
    });
  }

  /**
   * A batch that cannot fit under `maxUnconfirmed` is refused before any of it is sent. Otherwise
   * each message is published as on its own; if any fails, the batch fails with every id: as of
   * unknown outcome if any message's is (the broker may hold some), else as not accepted.
   */
  async publishAll(messages: readonly QueueMessage[], receivedAt: Date): Promise<void> {
    const ids = messages.map((message) => message.id);
    if (this.#unconfirmed + messages.length > this.#options.maxUnconfirmed) {
      throw batchFailure(new QueueUnavailable('over-capacity', 'too many events are waiting for the broker to take this batch', ids[0]!), ids);
    }
    const outcomes = await Promise.allSettled(messages.map((message) => this.publish(message, receivedAt)));
    const failures = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as unknown] : []));
    if (failures.length === 0) return;
    const worst = failures.find((failure) => failure instanceof PublishOutcomeUnknown) ?? failures.find((failure) => failure instanceof QueueUnavailable);
    throw worst === undefined ? failures[0] : batchFailure(worst as PublishFailed, ids);
  }

  #releaseDrainWaiters(channel: PublishChannel): void {
    if (this.#channel === channel) this.#saturated = false;
    const waiting = this.#waitingForDrain;
    this.#waitingForDrain = [];
    for (const send of waiting) send();
  }
}

/**
 * The AMQP message for an event: its JSON body with the receive time, persistent and mandatory (a
 * return means no queue took it), `messageId` = `id` (the consumer's idempotency key). A header
 * table only with partitions: amqplib encodes one per message at a cost the body's extra field
 * does not have (BENCHMARKS.md).
 */
export function encodeMessage(message: QueueMessage, receivedAt: Date, partitions = 1): { readonly content: Buffer; readonly properties: Options.Publish } {
  const body: QueueMessage = { ...message, receivedAt: receivedAt.toISOString() };
  const properties: Options.Publish = {
    persistent: true,
    mandatory: true,
    contentType: 'application/json',
    messageId: message.id,
    timestamp: Math.floor(receivedAt.getTime() / 1000),
  };
  if (partitions > 1) properties.headers = { [PARTITION_HEADER]: String(partitionOf(message.userId, partitions)) };
  return { content: Buffer.from(JSON.stringify(body)), properties };
}

/**
 * amqplib fails a confirm callback in two ways (lib/channel.js): the broker's basic.nack ("message
 * nacked": it refused the message, which is not queued) or the channel closing first ("channel
 * closed": the message may have reached the queue before the confirm was lost).
 */
function confirmFailure(err: unknown, id: string): QueueUnavailable | PublishOutcomeUnknown {
  if (err instanceof Error && err.message === 'message nacked') return new QueueUnavailable('nacked', 'the broker refused the event', id, err);
  return new PublishOutcomeUnknown('connection-lost', 'the broker connection was lost before it confirmed the event', id, err);
}
