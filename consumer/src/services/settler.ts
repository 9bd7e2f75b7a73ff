// The one place a delivery's final verdict is carried out (the parser's rejections come here from
// app.ts, the store's verdicts from the batch writer, which keeps `retry` ones back): stored and
// duplicate are acked; a rejected message is copied to the dead-letter queue with its reason in
// `x-rejection-reason` and the time in `x-rejected-at`, and acked only once the broker has
// confirmed that copy, so no message is lost between the two. The broker's own dead-lettering
// (nack) cannot add headers.
import type { Message } from 'amqplib';
import { REJECTED_AT_HEADER, REJECTION_REASON_HEADER } from '@event-tracker/common/broker/deadLetters.ts';
import type { Clock } from '@event-tracker/common/clock.ts';
import type { Logger } from '@event-tracker/common/logger.ts';
import type { ConsumerMetrics } from '../consumerMetrics.ts';
import type { Rejection, Verdict } from './verdict.ts';

/** The channel a delivery arrived on, as far as settling it goes. */
export interface AckChannel {
  /** False once the channel has closed: its delivery tags are void and the broker has requeued them. */
  readonly open: boolean;
  ack(message: Message): void;
  /** One delivery only: the acks of others may still be gathering (acks.ts). */
  nack(message: Message, allUpTo: false, requeue: boolean): void;
  /** Publishes a copy of `message` with `headers` added to the dead-letter queue; true once confirmed. */
  deadLetter(message: Message, headers: Readonly<Record<string, string>>): Promise<boolean>;
}

export interface Delivery {
  readonly message: Message;
  readonly channel: AckChannel;
}

export type FinalVerdict = Exclude<Verdict, { verdict: 'retry' }>;

export interface SettlerOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: ConsumerMetrics;
}

export class Settler {
  readonly #options: SettlerOptions;
  /** Dead-letter copies awaiting their confirm, so shutdown can wait for them. */
  readonly #deadLettering = new Set<Promise<void>>();

  constructor(options: SettlerOptions) {
    this.#options = options;
  }

  /** Dead-letter copies not yet confirmed: deliveries still in hand. */
  get pending(): number {
    return this.#deadLettering.size;
  }

  settle(delivery: Delivery, verdict: FinalVerdict): void {
    const { metrics } = this.#options;
    if (verdict.verdict === 'rejected') return this.#reject(delivery, verdict);
    (verdict.verdict === 'stored' ? metrics.stored : metrics.duplicates).inc();
    // A channel that closed meanwhile has lost its tags; the broker redelivers, and the redelivery
    // is a duplicate, acked then.
    if (delivery.channel.open) delivery.channel.ack(delivery.message);
  }

  /** Resolves once every dead-letter copy in flight is confirmed or has failed. */
  async idle(): Promise<void> {
    while (this.#deadLettering.size > 0) await Promise.all(this.#deadLettering);
  }

  #reject({ message, channel }: Delivery, { cause, reason }: Rejection): void {
    const { clock, logger, metrics } = this.#options;
    const { messageId } = message.properties;
    // The cause and the message's identity only: the reason can quote keys of the payload, which
    // never goes to the log. The reason travels with the message, in its header.
    const identity = { cause, messageId: typeof messageId === 'string' ? messageId : undefined, deliveryTag: message.fields.deliveryTag };
    if (!channel.open) return;
    const headers = { [REJECTION_REASON_HEADER]: reason, [REJECTED_AT_HEADER]: new Date(clock.wall()).toISOString() };
    const done = channel.deadLetter(message, headers).catch(() => false).then((confirmed) => {
      if (confirmed) {
        metrics.deadLettered.inc({ cause });
        logger.warn('message rejected to the dead-letter queue', identity);
        if (channel.open) channel.ack(message);
        return;
      }
      // Not confirmed: the original stays the only copy. Requeued, it comes back and is rejected
      // again; a quorum queue's delivery limit dead-letters it by itself if this keeps failing.
      logger.warn('dead-lettering was not confirmed; requeueing the message', identity);
      if (channel.open) channel.nack(message, false, true);
    });
    const tracked = done.finally(() => this.#deadLettering.delete(tracked));
    this.#deadLettering.add(tracked);
  }
}
