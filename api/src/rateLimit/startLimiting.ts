// The rate limiter RATE_LIMIT_STORE asks for, with what it runs on: the in-process sliding log
// (swept on a timer) alone, or Redis in front of it as the shared store.
import type { ApiMetrics } from '../apiMetrics.ts';
import type { Clock } from '@event-tracker/common/clock.ts';
import type { Config } from '../config.ts';
import type { HealthChecks } from '@event-tracker/common/health.ts';
import type { Logger } from '@event-tracker/common/logger.ts';
import { RedisConnection } from '../redisConnection.ts';
import { RedisLimiter } from './redisLimiter.ts';
import { RedisStore } from './redisStore.ts';
import { SlidingLogLimiter, startSweeping } from './slidingLog.ts';
import type { RateLimiter } from './types.ts';

export interface Limiting {
  readonly limiter: RateLimiter;
  /** For readiness, which reports them and does not depend on them. */
  readonly healthInfo: HealthChecks;
  /** Stops sweeping and drops the Redis connection: after the server has drained. */
  stop(): void;
}

export interface LimitingDeps {
  /** Monotonic: a stepped wall clock must not move a window or a Retry-After. */
  readonly clock: Pick<Clock, 'now'>;
  readonly logger: Logger;
  readonly metrics: ApiMetrics;
}

export function startLimiting(config: Config['rateLimit'], deps: LimitingDeps): Limiting {
  const { clock, logger, metrics } = deps;
  const local = new SlidingLogLimiter({ ...config, now: clock.now });
  const stopSweeping = startSweeping(local, config.sweepIntervalMs);
  const { store } = config;
  if (store.kind === 'memory') return { limiter: local, healthInfo: {}, stop: stopSweeping };

  const url = new URL(store.url);
  // Where, never who: the URL's user and password stay out of the log.
  logger.info('rate limit shared through redis', { redis: url.host, prefix: store.prefix, timeoutMs: store.timeoutMs });
  const connection = new RedisConnection({ url: store.url, clock, logger });
  const limiter = new RedisLimiter({
    store: new RedisStore({ runner: connection, prefix: store.prefix, maxRequests: config.maxRequests, windowMs: config.windowMs }),
    fallback: local,
    timeoutMs: store.timeoutMs,
    clock,
    logger,
    metrics,
  });
  return {
    limiter,
    healthInfo: { redis: () => limiter.storeUp },
    stop: () => {
      stopSweeping();
      connection.close();
    },
  };
}
