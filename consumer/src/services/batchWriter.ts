// The processing loop: delivery -> parse -> batch -> write -> ack. Deliveries are collected until
// BATCH_SIZE of them are waiting or the oldest has waited BATCH_MAX_WAIT_MS, written with one
// insertMany, and each is acked only once the database has acknowledged its document.
//
// Outages. A failed write is retried with capped exponential back-off and never acked, nacked or
// dropped while its channel is open; meanwhile `onStoreHealth(false)` lets the worker cancel the
// consumer, so nothing more is pulled (prefetch bounds what is already in hand). We never
// nack-with-requeue on a database error: in a quorum queue every requeue counts toward
// x-delivery-limit, so an outage would push good messages into the dead-letter queue.
// If the outage outlasts the broker's consumer_timeout (30 min), the broker closes the channel and
// requeues what we hold (one delivery-count increment). Those deliveries are void from then on
// (`channel.open` is false): we drop them from memory without acking and, since consumption stays
// cancelled until a write or ping succeeds again, they come back once, after the store is healthy,
// and are written idempotently. One outage therefore costs each message at most one redelivery.
import type { Message } from 'amqplib';
import type { ActivityStore, InsertOutcome } from '../activityStore.ts';
import { backoffDelay, type BackoffOptions } from '../backoff.ts';
import { sleep, type Clock } from '../clock.ts';
import type { ConsumerMetrics } from '../consumerMetrics.ts';
import type { Logger } from '../logger.ts';
import { parseDelivery, toDocument, type ParsedActivity } from './activityProcessor.ts';

/** The channel a delivery arrived on, as far as acknowledging goes. */
export interface AckChannel {
  /** False once the channel has closed: its delivery tags are void and the broker has requeued them. */
  readonly open: boolean;
  ack(message: Message): void;
  nack(message: Message, allUpTo?: boolean, requeue?: boolean): void;
}

export interface Delivery {
  readonly message: Message;
  readonly channel: AckChannel;
}

export interface BatchWriterOptions {
  readonly store: Pick<ActivityStore, 'insertBatch' | 'ping'>;
  readonly batchSize: number;
  readonly batchMaxWaitMs: number;
  /** A write unanswered this long counts as failed: its outcome is unknown, so it is retried. */
  readonly writeTimeoutMs: number;
  readonly retry: BackoffOptions;
  readonly clock: Clock;
  readonly random?: () => number;
  readonly logger: Logger;
  readonly metrics: ConsumerMetrics;
  /** Called when writes start failing (false) and when the store takes them again (true). */
  readonly onStoreHealth?: (healthy: boolean) => void;
}

interface Entry {
  readonly delivery: Delivery;
  readonly activity: ParsedActivity;
  readonly arrivedAt: number;
}

/** How long a recovery ping may take before it counts as a failure. */
const PING_TIMEOUT_MS = 2_000;

export class BatchWriter {
  readonly #options: BatchWriterOptions;
  /** Waiting for the next batch. */
  #pending: Entry[] = [];
  /** The batch being written, until each of its documents is stored. */
  #writing: readonly Entry[] = [];
  #cancelTimer: (() => void) | undefined;
  #draining: Promise<void> | undefined;
  #flushing = false;
  #healthy = true;
  /** Aborted by stop(): ends retries and the back-off wait in progress. */
  readonly #stop = new AbortController();

  constructor(options: BatchWriterOptions) {
    this.#options = options;
  }

  get #stopped(): boolean {
    return this.#stop.signal.aborted;
  }

  /** False from a failed write until a write or ping succeeds again. */
  get storeHealthy(): boolean {
    return this.#healthy;
  }

  /** Deliveries held, not yet acked: the batch being written and those waiting for the next. */
  get inHand(): number {
    return this.#writing.length + this.#pending.length;
  }

  add(delivery: Delivery): void {
    const parsed = parseDelivery(delivery.message);
    if (!parsed.ok) return this.#deadLetter(delivery, parsed.reason);
    this.#pending.push({ delivery, activity: parsed.activity, arrivedAt: this.#options.clock.now() });
    this.#kick();
  }

  /** Writes and acks everything in hand now, retrying as usual; resolves when nothing is left. */
  async flush(): Promise<void> {
    this.#flushing = true;
    this.#kick();
    while (this.#draining) await this.#draining;
  }

  /** Gives up: no more retries, timers cancelled. What is not acked is redelivered by the broker. */
  stop(): void {
    this.#stop.abort();
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
  }

  #kick(): void {
    if (this.#draining || this.#stopped) return;
    if (!this.#due()) return this.#arm();
    this.#draining = this.#drain()
      .catch((err: unknown) => this.#options.logger.error('batch loop failed', { err }))
      .finally(() => {
        this.#draining = undefined;
        this.#kick();
      });
  }

  #due(): boolean {
    const oldest = this.#pending[0];
    if (!oldest) return false;
    const waited = this.#options.clock.now() - oldest.arrivedAt;
    return this.#flushing || this.#pending.length >= this.#options.batchSize || waited >= this.#options.batchMaxWaitMs;
  }

  /** Wakes the loop when the oldest waiting delivery has waited BATCH_MAX_WAIT_MS. */
  #arm(): void {
    const oldest = this.#pending[0];
    if (this.#cancelTimer || !oldest) return;
    const remaining = oldest.arrivedAt + this.#options.batchMaxWaitMs - this.#options.clock.now();
    this.#cancelTimer = this.#options.clock.schedule(Math.max(0, remaining), () => {
      this.#cancelTimer = undefined;
      this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#due() && !this.#stopped) {
      this.#cancelTimer?.();
      this.#cancelTimer = undefined;
      await this.#writeUntilSettled(this.#pending.splice(0, this.#options.batchSize));
      this.#writing = [];
    }
  }

  /** Writes `batch` until every document is stored or its channel is gone; only stop() cuts it short. */
  async #writeUntilSettled(batch: readonly Entry[]): Promise<void> {
    const { store, logger, metrics, retry, random } = this.#options;
    this.#writing = batch;
    for (let attempt = 1; !this.#stopped; attempt++) {
      this.#dropVoid();
      if (this.#writing.length > 0) {
        this.#writing = await this.#write(this.#writing);
        if (this.#writing.length === 0) return this.#setHealthy(true);
      } else if (this.#flushing) {
        // Shutting down with nothing left to write: the store's recovery no longer matters.
        return;
      } else if (this.#healthy || (await store.ping(PING_TIMEOUT_MS))) {
        // Nothing left to write (its channel closed): while the store is down, a ping is what tells
        // us consumption may resume.
        return this.#setHealthy(true);
      }
      this.#setHealthy(false);
      if (this.#stopped) return;
      const delayMs = backoffDelay(attempt, retry, random);
      metrics.retries.inc();
      logger.warn('retrying batch write', { attempt, delayMs, messages: this.#writing.length });
      await sleep(this.#options.clock, delayMs, this.#stop.signal);
    }
  }

  /** Forgets deliveries of a closed channel, written or waiting: the broker has requeued them. */
  #dropVoid(): void {
    const open = (entry: Entry) => entry.delivery.channel.open;
    this.#writing = this.#writing.filter(open);
    this.#pending = this.#pending.filter(open);
  }

  /** One insertMany; acks what is stored and returns what is not. */
  async #write(entries: readonly Entry[]): Promise<Entry[]> {
    const { clock, store, metrics, logger } = this.#options;
    const started = clock.now();
    const processedAt = new Date(started);
    const docs = entries.map((entry) => toDocument(entry.activity, processedAt));
    const outcome = await this.#answerOf(store.insertBatch(docs));
    metrics.writeSeconds.observe((clock.now() - started) / 1000);
    metrics.batchSize.observe(entries.length);

    const failed: Entry[] = [];
    entries.forEach((entry, index) => {
      const status = outcome.statuses[index] ?? 'failed';
      if (status === 'failed') return void failed.push(entry);
      (status === 'stored' ? metrics.stored : metrics.duplicates).inc();
      // A channel that closed during the write has lost its tags; the broker redelivers, and the
      // redelivery is a duplicate, acked then.
      if (entry.delivery.channel.open) entry.delivery.channel.ack(entry.delivery.message);
    });
    if (failed.length > 0) logger.warn('batch write failed', { err: outcome.error, failed: failed.length, batch: entries.length });
    return failed;
  }

  /**
   * The store's answer to a write, or "every document failed" once WRITE_TIMEOUT_MS passes without
   * one. The driver's own timeouts do not always end a write: on Bun we saw insertMany stay pending
   * for over a minute after its connection was cut, stalling the whole consumer while /health said
   * ok. A write abandoned here may still land; its documents then come back as duplicates and are
   * acked. The store reports failures instead of throwing; should it throw anyway, nothing is stored.
   */
  #answerOf(write: Promise<InsertOutcome>): Promise<InsertOutcome> {
    const { clock, writeTimeoutMs } = this.#options;
    return new Promise((resolve) => {
      const cancel = clock.schedule(writeTimeoutMs, () => resolve({ statuses: [], error: new Error(`no answer from the database within ${writeTimeoutMs} ms`) }));
      write.then(resolve, (error: unknown) => resolve({ statuses: [], error })).finally(cancel);
    });
  }

  #deadLetter(delivery: Delivery, reason: string): void {
    const { messageId } = delivery.message.properties;
    // The reason and the message's identity only: the payload never goes to the log.
    this.#options.logger.warn('message rejected to the dead-letter queue', {
      reason,
      messageId: typeof messageId === 'string' ? messageId : undefined,
      deliveryTag: delivery.message.fields.deliveryTag,
    });
    this.#options.metrics.deadLettered.inc();
    if (delivery.channel.open) delivery.channel.nack(delivery.message, false, false);
  }

  #setHealthy(healthy: boolean): void {
    if (healthy === this.#healthy) return;
    this.#healthy = healthy;
    if (healthy) this.#options.logger.info('database writes succeed again; resuming consumption');
    else this.#options.logger.warn('database writes failing; pausing consumption');
    this.#options.onStoreHealth?.(healthy);
  }
}
