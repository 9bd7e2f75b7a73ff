// Batching and writing: parsed deliveries are collected until BATCH_SIZE of them are waiting or the
// oldest has waited BATCH_MAX_WAIT_MS, written with one insertMany (two batches at a time), and each
// document's verdict is handed to the settler: stored and duplicate are acked, rejected (the database
// refused it, or the driver cannot encode it) is dead-lettered, in the same write cycle. Only `retry`
// stays in hand. Batches may end out of order; acks.ts keeps each ack behind its own write.
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

/** One insertMany's deliveries, from its first write until each is settled or void. */
interface Batch {
  /** Those still to be written: after each attempt, only the ones it left to retry. */
  entries: readonly Entry[];
}

/** How long a recovery ping may take before it counts as a failure. */
const PING_TIMEOUT_MS = 2_000;

/**
 * Batches written at once while the store is healthy. With one, the database idles while the
 * consumer settles a finished batch and encodes the next; with two, it has the next in hand
 * meanwhile (BENCHMARKS.md section 4). While a batch is being retried, one at a time: the store is
 * failing, and more writes would only add load to it.
 */
const WRITES_IN_FLIGHT = 2;

export class BatchWriter {
  readonly #options: BatchWriterOptions;
  /** Waiting for the next batch. */
  #pending: Entry[] = [];
  /** The batches being written, each with its write loop (#writeUntilSettled). */
  readonly #writing = new Map<Batch, Promise<void>>();
  /** Batches whose last write failed: the store counts as unhealthy while there is one. */
  readonly #failing = new Set<Batch>();
  #cancelTimer: (() => void) | undefined;
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

  /** False from a failed write until that batch is written, or a ping succeeds once its channel closed. */
  get storeHealthy(): boolean {
    return this.#healthy;
  }

  /** Deliveries held, not yet acked: the batches being written and those waiting for the next. */
  get inHand(): number {
    let count = this.#pending.length;
    for (const batch of this.#writing.keys()) count += batch.entries.length;
    return count;
  }

  add(delivery: Delivery, activity: ParsedActivity): void {
    this.#pending.push({ delivery, activity, arrivedAt: this.#options.clock.now() });
    this.#kick();
  }

  /** Writes and acks everything in hand now, retrying as usual; resolves when nothing is left. */
  async flush(): Promise<void> {
    this.#flushing = true;
    this.#kick();
    // A write that ends starts the next batch before its promise resolves, so this sees that one too.
    while (this.#writing.size > 0) await Promise.all(this.#writing.values());
  }

  /** Gives up: no more retries, timers cancelled. What is not acked is redelivered by the broker. */
  stop(): void {
    this.#stop.abort();
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
  }

  /** Starts every batch that is due and has a free slot; otherwise waits for the oldest's timer. */
  #kick(): void {
    if (this.#stopped) return;
    const slots = this.#healthy ? WRITES_IN_FLIGHT : 1;
    while (this.#writing.size < slots && this.#due()) this.#start(this.#pending.splice(0, this.#options.batchSize));
    // A full house needs no timer: the next write to end kicks again.
    if (this.#writing.size < slots) this.#arm();
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

  #start(entries: readonly Entry[]): void {
    // The timer was for the oldest delivery, which this batch takes.
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    const batch: Batch = { entries };
    const written = this.#writeUntilSettled(batch)
      .catch((err: unknown) => this.#options.logger.error('batch loop failed', { err }))
      .finally(() => {
        this.#writing.delete(batch);
        // Cut short (stop, or a flush with nothing left to write): the health stays as it was.
        this.#failing.delete(batch);
        this.#kick();
      });
    this.#writing.set(batch, written);
  }

  /** Writes `batch` until every document is stored or its channel is gone; only stop() cuts it short. */
  async #writeUntilSettled(batch: Batch): Promise<void> {
    const { store, logger, metrics, retry, random } = this.#options;
    for (let attempt = 1; !this.#stopped; attempt++) {
      this.#dropVoid(batch);
      if (batch.entries.length > 0) {
        batch.entries = await this.#write(batch.entries);
        if (batch.entries.length === 0) return this.#succeeded(batch);
      } else if (this.#flushing) {
        // Shutting down with nothing left to write: the store's recovery no longer matters.
        return;
      } else if (this.#healthy || (await store.ping(PING_TIMEOUT_MS))) {
        // Nothing left to write (its channel closed): while the store is down, a ping is what tells
        // us consumption may resume.
        return this.#succeeded(batch);
      }
      this.#failing.add(batch);
      this.#setHealthy(false);
      if (this.#stopped) return;
      const delayMs = backoffDelay(attempt, retry, random);
      metrics.retries.inc();
      logger.warn('retrying batch write', { attempt, delayMs, messages: batch.entries.length });
      await sleep(this.#options.clock, delayMs, this.#stop.signal);
    }
  }

  /** Healthy again only once no batch is left failing: a write beside a failing one proves little. */
  #succeeded(batch: Batch): void {
    this.#failing.delete(batch);
    if (this.#failing.size === 0) this.#setHealthy(true);
  }

  /**
   * Forgets deliveries of a closed channel, in `batch` and waiting: the broker has requeued them.
   * Every batch calls this before each of its writes. Another batch's entries are left to it: while
   * its write is in flight, its answer replaces them, and settling skips a closed channel anyway.
   */
  #dropVoid(batch: Batch): void {
    const open = (entry: Entry) => entry.delivery.channel.open;
    batch.entries = batch.entries.filter(open);
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
