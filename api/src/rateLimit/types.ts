// What the app asks of a rate limiter and what it answers, whichever store keeps the logs: the
// in-process sliding log (slidingLog.ts) or Redis (redisLimiter.ts).

export interface Decision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  readonly windowMs: number;
  /** Milliseconds until the oldest logged request leaves the window, freeing a slot. */
  readonly resetMs: number;
}

/** What the app asks of a limiter, whichever store keeps the logs. */
export interface RateLimiter {
  /** Counts a request from `key` if it fits in the window; a shared store answers asynchronously. */
  hit(key: string): Decision | Promise<Decision>;
  /** Clients tracked in this process's memory (with Redis: by the in-process fallback). */
  readonly size: number;
  /** See SlidingLogLimiter.evictions. */
  readonly evictions: number;
}
