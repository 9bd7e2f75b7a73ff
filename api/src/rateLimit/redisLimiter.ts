// RATE_LIMIT_STORE=redis: the limit shared by every replica through Redis, and never a reason to
// fail a request. When Redis cannot decide (unreachable, an error reply, or no answer within
// RATE_LIMIT_REDIS_TIMEOUT_MS) the in-process limiter decides that request, so the limit still
// holds per replica. The switch each way is logged once; every fallback is counted.
import type { ApiMetrics } from '../apiMetrics.ts';
import type { Clock } from '@event-tracker/common/clock.ts';
import type { Logger } from '@event-tracker/common/logger.ts';
import type { Decision, RateLimiter } from './types.ts';
import type { StoreOutcome } from './redisStore.ts';

/** What the limiter needs of the Redis store (redisStore.ts); tests put a fake here. */
export interface SharedStore {
  hit(key: string): Promise<StoreOutcome>;
  readonly ready: boolean;
}

/**
 * Why the in-process limiter decided a request: no connection, an error reply, no answer in time,
 * or Redis is down and a call to it is still waiting (the request that is finding out whether it is back).
 */
export type FallbackReason = 'unreachable' | 'error' | 'timeout' | 'probing';

export interface RedisLimiterOptions {
  readonly store: SharedStore;
  /** The in-process limiter, with the same policy. */
  readonly fallback: RateLimiter;
  readonly timeoutMs: number;
  readonly clock: Pick<Clock, 'now'>;
  readonly logger: Logger;
  readonly metrics: Pick<ApiMetrics, 'rateLimitFallbacks' | 'rateLimitRedisSeconds' | 'rateLimitRedisUp'>;
}

const TIMED_OUT = { kind: 'timeout' } as const;

export class RedisLimiter implements RateLimiter {
  readonly #options: RedisLimiterOptions;
  #down: { readonly since: number } | undefined;
  /**
   * Calls to Redis not yet answered. While down, a request asks Redis only when none is (then it is
   * the probe), and the others go straight to the fallback: an unanswering Redis costs one request
   * per timeout its wait, not every request, and the calls waiting on it stay few.
   */
  #asking = 0;

  constructor(options: RedisLimiterOptions) {
    this.#options = options;
    options.metrics.rateLimitRedisUp.track(() => (this.storeUp ? 1 : 0));
  }

  get size(): number {
    return this.#options.fallback.size;
  }

  get evictions(): number {
    return this.#options.fallback.evictions;
  }

  /** Connected, and not in an outage: from the first request Redis failed to decide until the next it decides in time. */
  get storeUp(): boolean {
    return this.#down === undefined && this.#options.store.ready;
  }

  async hit(key: string): Promise<Decision> {
    const { store, clock, metrics } = this.#options;
    if (this.#down !== undefined && this.#asking > 0) return this.#fallBack(key, 'probing');
    this.#asking += 1;
    const started = clock.now();
    // The store reports failures as outcomes; a throw (a bug) is one more error, never a 500.
    const attempt = store.hit(key).then(
      (outcome) => {
        this.#asking -= 1;
        // Late answers too, so the histogram shows how far past the timeout a slow Redis is.
        if (outcome.kind === 'decided') metrics.rateLimitRedisSeconds.observe((clock.now() - started) / 1000);
        return outcome;
      },
      (error: unknown): StoreOutcome => {
        this.#asking -= 1;
        return { kind: 'error', error: error instanceof Error ? error : new Error(String(error)) };
      },
    );
    const outcome = await this.#within(attempt);
    if (outcome.kind === 'decided') {
      this.#markUp();
      return outcome.decision;
    }
    this.#markDown(outcome.kind, outcome.kind === 'timeout' ? undefined : outcome.error);
    return this.#fallBack(key, outcome.kind);
  }

  #within(attempt: Promise<StoreOutcome>): Promise<StoreOutcome | typeof TIMED_OUT> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(resolve, this.#options.timeoutMs, TIMED_OUT)));
    return Promise.race([attempt, timeout]).finally(() => clearTimeout(timer));
  }

  #fallBack(key: string, reason: FallbackReason): Decision | Promise<Decision> {
    this.#options.metrics.rateLimitFallbacks.inc({ reason });
    return this.#options.fallback.hit(key);
  }

  #markDown(reason: FallbackReason, err: Error | undefined): void {
    if (this.#down !== undefined) return;
    this.#down = { since: this.#options.clock.now() };
    this.#options.logger.warn('rate limit store unavailable: limiting in process, per replica, until it answers again', {
      store: 'redis',
      reason,
      timeoutMs: this.#options.timeoutMs,
      ...(err === undefined ? {} : { err }),
    });
  }

  #markUp(): void {
    if (this.#down === undefined) return;
    const downMs = Math.round(this.#options.clock.now() - this.#down.since);
    this.#down = undefined;
    this.#options.logger.info('rate limit store answering again: the limit is shared across replicas', { store: 'redis', downMs });
  }
}
