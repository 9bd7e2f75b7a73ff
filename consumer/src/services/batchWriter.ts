// Batching and writing: parsed deliveries are collected until BATCH_SIZE of them are waiting or the
// oldest has waited BATCH_MAX_WAIT_MS, written with one insertMany, and each document's verdict is
// handed to the settler: stored and duplicate are acked, rejected (the database refused it, or the
// driver cannot encode it) is dead-lettered, in the same write cycle. Only `retry` stays in hand.
//
// Outages. A write that fails as a whole is retried with capped exponential back-off and never
// acked, nacked or dropped while its channel is open; meanwhile `onStoreHealth(false)` lets the
// worker cancel the consumer, so nothing more is pulled (prefetch bounds what is in hand). We never
// nack-with-requeue on a database error: in a quorum queue every requeue counts toward
// x-delivery-limit, so an outage would push good messages into the dead-letter queue.
// If the outage outlasts the broker's consumer_timeout (30 min), the broker closes the channel and
// requeues what we hold (one delivery-count increment). Those deliveries are void from then on
// (`channel.open` is false): we drop them from memory without acking and, since consumption stays
// cancelled until a write or ping succeeds again, they come back once, after the store is healthy,
// and are written idempotently. One outage therefore costs each message at most one redelivery.
import type { ActivityStore, InsertOutcome } from '../activityStore.ts';
import { backoffDelay, type BackoffOptions } from '@event-tracker/common/backoff.ts';
import { sleep, type Clock } from '@event-tracker/common/clock.ts';
import type { ConsumerMetrics } from '../consumerMetrics.ts';
import type { Logger } from '@event-tracker/common/logger.ts';
import { toDocument, type ParsedActivity } from './activityProcessor.ts';
import { RETRY } from './verdict.ts';
import type { Delivery, Settler } from './settler.ts';

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
  readonly settler: Settler;
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

  add(delivery: Delivery, activity: ParsedActivity): void {
    this.#pending.push({ delivery, activity, arrivedAt: this.#options.clock.now() });
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

  /** One insertMany; settles each document's verdict and returns those to retry. */
  async #write(entries: readonly Entry[]): Promise<Entry[]> {
    const { clock, store, metrics, logger, settler } = this.#options;
    const started = clock.now();
    const processedAt = new Date(clock.wall());
    const docs = entries.map((entry) => toDocument(entry.activity, processedAt));
    const outcome = await this.#answerOf(store.insertBatch(docs));
    metrics.writeSeconds.observe((clock.now() - started) / 1000);
    metrics.batchSize.observe(entries.length);
    if (outcome.crossSource) {
      // One source using an id another already used is a client bug, or a key holder pre-empting another source.
      metrics.crossSourceIds.inc({}, outcome.crossSource.length);
      logger.warn('event ids another source already holds, stored apart', { ids: outcome.crossSource });
    }

    const retry: Entry[] = [];
    entries.forEach((entry, index) => {
      const verdict = outcome.verdicts[index] ?? RETRY;
      if (verdict.verdict === 'retry') retry.push(entry);
      else settler.settle(entry.delivery, verdict);
    });
    if (retry.length > 0) logger.warn('batch write failed', { err: outcome.error, failed: retry.length, batch: entries.length });
    return retry;
  }

  /**
   * The store's answer to a write, or "retry every document" once WRITE_TIMEOUT_MS passes without
   * one. The driver's own timeouts do not always end a write: on Bun we saw insertMany stay pending
   * for over a minute after its connection was cut, stalling the whole consumer while /health said
   * ok. A write abandoned here may still land; its documents then come back as duplicates and are
   * acked. The store gives verdicts instead of throwing; should it throw anyway, everything is retried.
   */
  #answerOf(write: Promise<InsertOutcome>): Promise<InsertOutcome> {
    const { clock, writeTimeoutMs } = this.#options;
    return new Promise((resolve) => {
      const cancel = clock.schedule(writeTimeoutMs, () => resolve({ verdicts: [], error: new Error(`no answer from the database within ${writeTimeoutMs} ms`) }));
      write.then(resolve, (error: unknown) => resolve({ verdicts: [], error })).finally(cancel);
    });
  }

  #setHealthy(healthy: boolean): void {
    if (healthy === this.#healthy) return;
    this.#healthy = healthy;
    if (healthy) this.#options.logger.info('database writes succeed again; resuming consumption');
    else this.#options.logger.warn('database writes failing; pausing consumption');
    this.#options.onStoreHealth?.(healthy);
  }
}
