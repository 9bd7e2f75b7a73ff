// Per-client sliding-log rate limiting in this process: at most `maxRequests` logged requests in
// any `windowMs`. Rejected requests are not logged, so a client that waits is let back in. A plain
// class with an injected clock; only startSweeping() touches timers. The Redis store
// (redisLimiter.ts) gives the same answers through the same RateLimiter interface (types.ts).
import type { Decision, RateLimiter } from './types.ts';

export interface LimiterOptions {
  readonly maxRequests: number;
  readonly windowMs: number;
  /** Cap on tracked clients; beyond it the least recently seen client is forgotten. */
  readonly maxKeys: number;
  readonly now: () => number;
  /** Maps the keys are spread over (a power of two; default 64). 1 makes eviction exact LRU. */
  readonly shards?: number;
}

/** Keys one sweep() call looks at: a chunk short enough that requests keep flowing between chunks (BENCHMARKS.md section 2). */
export const SWEEP_CHUNK_KEYS = 2_000;

/**
 * V8 rehashes a whole Map at once when deletes shrink it, a pause no chunking of the sweep avoids
 * (its length for a million keys: BENCHMARKS.md section 2). Spreading the keys over 64 Maps makes
 * each rehash 1/64 as long.
 */
const DEFAULT_SHARDS = 64;

/**
 * An age the limiter reads is under two windows plus a sweep interval (a client's oldest time is
 * within a window of its newest, and the sweep forgets it a window after its newest): with the
 * window and the sweep interval each at most 2^30 ms (config.ts), that stays below the 2^32 ms at
 * which 32-bit times wrap.
 */
export const MAX_WINDOW_MS = 2 ** 30;

/** Slots in one page of a RowPool: 64 KiB of 32-bit slots. */
const PAGE_SLOTS = 16_384;

/**
 * Full-size logs: rows of 32-bit slots that are views over shared 64 KiB pages, so a row costs its
 * slots plus one view object and no buffer of its own (sizes: BENCHMARKS.md, "Measurements behind
 * code comments"). A forgotten client's row goes back on the free list for the next log that fills;
 * pages are never released, so the pool keeps as many rows as the most full logs held at once.
 */
class RowPool {
  readonly #slots: number;
  readonly #free: Uint32Array[] = [];

  constructor(slots: number) {
    this.#slots = slots;
  }

  take(): Uint32Array {
    if (this.#free.length === 0) this.#addPage();
    return this.#free.pop()!;
  }

  give(row: Uint32Array): void {
    this.#free.push(row);
  }

  #addPage(): void {
    const rows = Math.max(1, Math.floor(PAGE_SLOTS / this.#slots));
    const rowBytes = this.#slots * Uint32Array.BYTES_PER_ELEMENT;
    const page = new ArrayBuffer(rows * rowBytes);
    for (let i = rows - 1; i >= 0; i--) this.#free.push(new Uint32Array(page, i * rowBytes, this.#slots));
  }
}

/**
 * One client's request times, oldest first, in a ring buffer that starts at two slots and doubles
 * up to the limit. A time is whole milliseconds modulo 2^32 and an age is `(now - time) >>> 0`,
 * exact while the time is under 49 days old, which MAX_WINDOW_MS and the sweep ensure. The smaller
 * buffers are plain arrays; the full-size one is a RowPool row, 4 bytes a time where an array
 * spends 8 (in V8 and JavaScriptCore alike), which keeps a full log under the per-client memory
 * target (bench/limiter.ts; BENCHMARKS.md section 2 has the figures).
 */
class RequestLog {
  times: number[] | Uint32Array;
  start = 0;
  count = 0;

  constructor(capacity: number) {
    this.times = new Array<number>(capacity).fill(0);
  }

  at(index: number): number {
    return this.times[(this.start + index) % this.times.length]!;
  }

  ageAt(index: number, now: number): number {
    return (now - this.at(index)) >>> 0;
  }

  /** Whether the newest request is still inside the window. */
  inWindow(now: number, windowMs: number): boolean {
    return this.count > 0 && this.ageAt(this.count - 1, now) < windowMs;
  }

  /**
   * Forgets requests `windowMs` old or older, which have left the window, and returns the age of
   * the oldest one left: 0 if none is, as a request logged now is then the oldest.
   */
  dropExpired(now: number, windowMs: number): number {
    while (this.count > 0) {
      const age = this.ageAt(0, now);
      if (age < windowMs) return age;
      this.start = (this.start + 1) % this.times.length;
      this.count -= 1;
    }
    return 0;
  }

  push(time: number, limit: number, rows: RowPool): void {
    if (this.count === this.times.length) {
      const capacity = Math.min(this.times.length * 2, limit);
      const grown = capacity === limit ? rows.take() : new Array<number>(capacity).fill(0);
      for (let i = 0; i < this.count; i++) grown[i] = this.at(i);
      this.times = grown;
      this.start = 0;
    }
    this.times[(this.start + this.count) % this.times.length] = time;
    this.count += 1;
  }
}

export class SlidingLogLimiter implements RateLimiter {
  // Map iteration order is insertion order; every hit moves its key to the end (unless it is the
  // shard's newest already), so the first key of a shard is always its least recently used one.
  readonly #shards: Map<string, RequestLog>[];
  /** Each shard's most recently used key, which a hit need not move to the end again. */
  readonly #newest: Array<string | undefined>;
  readonly #options: LimiterOptions;
  readonly #rows: RowPool;
  #size = 0;
  #evictions = 0;
  #sweepShard = 0;
  #sweepCursor: Iterator<[string, RequestLog]> | undefined;

  constructor(options: LimiterOptions) {
    if (!(options.windowMs <= MAX_WINDOW_MS)) throw new RangeError(`windowMs must be at most ${MAX_WINDOW_MS} (about 12 days)`);
    this.#options = options;
    this.#shards = Array.from({ length: options.shards ?? DEFAULT_SHARDS }, () => new Map());
    this.#newest = this.#shards.map(() => undefined);
    this.#rows = new RowPool(options.maxRequests);
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Clients forgotten by eviction while a request of theirs was still inside the window: each
   * one's next request starts a fresh log, so a rising count means maxKeys is too small to hold
   * the limit. Clients evicted or swept after their window has passed lose nothing and are not counted.
   */
  get evictions(): number {
    return this.#evictions;
  }

  /** Counts a request from `key` if it fits in the window. */
  hit(key: string): Decision {
    const { maxRequests: limit, windowMs, maxKeys, now: clock } = this.#options;
    const now = clock() >>> 0; // whole milliseconds modulo 2^32, as the logs keep them
    const shard = this.#shardOf(key);
    const logs = this.#shards[shard]!;
    let log = logs.get(key);
    if (log === undefined) {
      if (this.#size >= maxKeys) this.#evictFrom(logs, now);
      log = new RequestLog(Math.min(2, limit));
      this.#size += 1;
      logs.set(key, log);
    } else if (this.#newest[shard] !== key) {
      // Moved to the end, unless it is there already: a Map deleted from and added to on every
      // request is rehashed again and again, which costs the garbage collector (deadlines.ts).
      logs.delete(key);
      logs.set(key, log);
    }
    this.#newest[shard] = key;

    const oldestAge = log.dropExpired(now, windowMs);
    const allowed = log.count < limit;
    if (allowed) log.push(now, limit, this.#rows);
    return { allowed, limit, windowMs, remaining: limit - log.count, resetMs: windowMs - oldestAge };
  }

  /**
   * Forgets clients whose newest request has left the window, looking at no more than `budget`
   * keys per call and resuming where the last call stopped. Returns true when a pass is complete.
   */
  sweep(budget = SWEEP_CHUNK_KEYS): boolean {
    const now = this.#options.now() >>> 0;
    for (let seen = 0; seen < budget; ) {
      const logs = this.#shards[this.#sweepShard]!;
      this.#sweepCursor ??= logs.entries();
      const next = this.#sweepCursor.next();
      if (next.done === true) {
        this.#sweepCursor = undefined;
        this.#sweepShard = (this.#sweepShard + 1) % this.#shards.length;
        if (this.#sweepShard === 0) return true;
        continue;
      }
      seen += 1;
      const [key, log] = next.value;
      if (!log.inWindow(now, this.#options.windowMs)) this.#forget(logs, key, log);
    }
    return false;
  }

  #forget(logs: Map<string, RequestLog>, key: string, log: RequestLog): void {
    logs.delete(key);
    this.#size -= 1;
    if (!Array.isArray(log.times)) this.#rows.give(log.times);
  }

  #shardOf(key: string): number {
    let hash = 0;
    for (let i = 0; i < key.length; i++) hash = (Math.imul(hash, 31) + key.charCodeAt(i)) | 0;
    return hash & (this.#shards.length - 1);
  }

  /**
   * Forgets the least recently used key of the newcomer's shard, or of the next shard that has one,
   * counting it when its newest request is still inside the window.
   */
  #evictFrom(logs: Map<string, RequestLog>, now: number): void {
    const start = this.#shards.indexOf(logs);
    for (let i = 0; i < this.#shards.length; i++) {
      const shard = this.#shards[(start + i) % this.#shards.length]!;
      const oldest = shard.entries().next();
      if (oldest.done !== true) {
        const [key, log] = oldest.value;
        if (log.inWindow(now, this.#options.windowMs)) this.#evictions += 1;
        this.#forget(shard, key, log);
        return;
      }
    }
  }
}

/** Runs a full sweep every `intervalMs`, in chunks that yield to I/O in between. Returns a stop function. */
export function startSweeping(limiter: SlidingLogLimiter, intervalMs: number): () => void {
  let sweeping = false;
  const step = (): void => {
    sweeping = !limiter.sweep();
    if (sweeping) setImmediate(step);
  };
  const timer = setInterval(() => {
    if (!sweeping) step();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
