// Load shedding, after Fastify's under-pressure: while the event loop runs late or too many
// ingestion requests are in hand, a new one is answered 503 with Retry-After before any work is
// done for it, rather than joining a backlog in which every client's request times out (408).

/** Why a request was shed, for the `api_shed_requests_total` metric. */
export type ShedReason = 'event-loop-delay' | 'in-flight';

/**
 * How often the loop's lateness is sampled: one unref'd timer callback per interval, and a loop
 * blocked for longer than this is seen at the next turn, before the requests queued meanwhile are read.
 */
export const SAMPLE_INTERVAL_MS = 100;

export interface LoadShedderOptions {
  readonly maxInFlight: number;
  readonly maxEventLoopDelayMs: number;
  /** Monotonic milliseconds; tests pass a fake clock and call sample() themselves. */
  readonly now: () => number;
}

export class LoadShedder {
  readonly #maxInFlight: number;
  readonly #maxDelayMs: number;
  readonly #now: () => number;
  #inFlight = 0;
  #delayMs = 0;
  #lastSample: number;

  constructor(options: LoadShedderOptions) {
    this.#maxInFlight = options.maxInFlight;
    this.#maxDelayMs = options.maxEventLoopDelayMs;
    this.#now = options.now;
    this.#lastSample = options.now();
  }

  /** Ingestion requests being handled now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** How late the last sample ran: the time the loop spent on other work past its turn. */
  get eventLoopDelayMs(): number {
    return this.#delayMs;
  }

  /**
   * One turn of the sampler, due SAMPLE_INTERVAL_MS after the last. A lag timer rather than
   * perf_hooks' monitorEventLoopDelay: it reads the injected clock, so a test steps it by hand. The
   * latest sample alone decides, so shedding stops one turn after the loop is free again.
   */
  sample(): void {
    const now = this.#now();
    this.#delayMs = Math.max(0, now - this.#lastSample - SAMPLE_INTERVAL_MS);
    this.#lastSample = now;
  }

  /** Starts sampling on a timer that keeps no process alive; returns what stops it. */
  start(): () => void {
    this.#lastSample = this.#now();
    const timer = setInterval(() => this.sample(), SAMPLE_INTERVAL_MS);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Why a new request should be shed now, or undefined to serve it. */
  check(): ShedReason | undefined {
    if (this.#delayMs >= this.#maxDelayMs) return 'event-loop-delay';
    if (this.#inFlight >= this.#maxInFlight) return 'in-flight';
    return undefined;
  }

  /** Counts a request as in hand until the returned function is called (again is harmless). */
  enter(): () => void {
    this.#inFlight += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight -= 1;
    };
  }
}
