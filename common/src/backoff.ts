// Capped exponential back-off with jitter, shared by database retries and broker reconnects.

export interface BackoffOptions {
  readonly baseMs: number;
  readonly maxMs: number;
}

/**
 * The wait before retry number `attempt` (1, 2, ...): the ceiling doubles from `baseMs` up to
 * `maxMs`, and the wait is drawn from its upper half ("equal jitter"), so many consumers that
 * failed together spread their retries out, yet none retries in a tight loop.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
