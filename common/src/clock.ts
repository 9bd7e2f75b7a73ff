// Time as the services see it, injected so tests drive batching, deadlines and back-off without waiting.

export interface Clock {
  /**
   * Milliseconds on a monotonic clock: for windows, deadlines and durations, which must not jump
   * when the wall clock is stepped (NTP, a VM resumed, an operator).
   */
  now(): number;
  /** The wall clock, in Unix milliseconds: only for times that are stored or sent. */
  wall(): number;
  /** Runs `task` after `ms` milliseconds; the returned function cancels it. */
  schedule(ms: number, task: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
  schedule(ms, task) {
    const timer = setTimeout(task, ms);
    return () => clearTimeout(timer);
  },
};

/** Resolves after `ms`, or at once when `signal` aborts; never rejects, callers check their own state. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const cancel = clock.schedule(ms, done);
    signal?.addEventListener('abort', done, { once: true });
  });
}
