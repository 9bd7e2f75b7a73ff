// Acks for one channel, gathered into as few basic.ack frames as the settle-before-ack rule allows.
// A batch settles its deliveries in one synchronous pass; acking each cost the consumer one frame
// and one socket write, and the quorum queue one settle command, per message (BENCHMARKS.md §4).
// Here the acks asked for in that pass go out together on the next microtask: one `multiple` ack for
// the run of oldest deliveries that are all settled, and a plain ack for each settled delivery
// behind one still in hand (a write being retried, a dead-letter copy awaiting its confirm), which
// a `multiple` ack would settle along with the ones before it.
import type { Message } from 'amqplib';

/** The two calls of an amqplib channel the acks need. */
export interface AckTarget {
  ack(message: Message, allUpTo?: boolean): void;
  nack(message: Message, allUpTo?: boolean, requeue?: boolean): void;
}

export class Acks {
  readonly #channel: AckTarget;
  /**
   * Every delivery not yet acked or nacked, by delivery tag, in the order the broker sent them (a
   * Map keeps insertion order, and a channel's tags only grow): the value is the message once its
   * ack was asked for, undefined while it is still in hand.
   */
  readonly #unsettled = new Map<number, Message | undefined>();
  /** Acks asked for since the last send. */
  #asked: Message[] = [];

  constructor(channel: AckTarget) {
    this.#channel = channel;
  }

  /** Deliveries the broker still counts against the prefetch: in hand, or acked but not yet sent. */
  get size(): number {
    return this.#unsettled.size;
  }

  /** Records a delivery as it arrives, before anyone can settle it. */
  delivered(message: Message): void {
    this.#unsettled.set(message.fields.deliveryTag, undefined);
  }

  /** Acks `message` on the next microtask, with whatever else is acked in the same pass. */
  ack(message: Message): void {
    const tag = message.fields.deliveryTag;
    // Not recorded as delivered: on its own, at once. Asked already: once is enough.
    if (!this.#unsettled.has(tag)) return this.#channel.ack(message, false);
    if (this.#unsettled.get(tag) !== undefined) return;
    this.#unsettled.set(tag, message);
    if (this.#asked.push(message) === 1) queueMicrotask(() => this.#send());
  }

  /** Nacks at once: a nack is rare, and it must not wait for, nor be folded into, any ack. */
  nack(message: Message, requeue: boolean): void {
    this.#unsettled.delete(message.fields.deliveryTag);
    this.#channel.nack(message, false, requeue);
  }

  #send(): void {
    const asked = this.#asked;
    this.#asked = [];
    // The oldest deliveries, as long as each is acked: one frame settles them all.
    let last: Message | undefined;
    for (const [tag, message] of this.#unsettled) {
      if (message === undefined) break;
      this.#unsettled.delete(tag);
      last = message;
    }
    if (last) this.#channel.ack(last, true);
    // Behind one still in hand: each on its own, so the one in hand stays unacked.
    for (const message of asked) {
      if (this.#unsettled.delete(message.fields.deliveryTag)) this.#channel.ack(message, false);
    }
  }
}
