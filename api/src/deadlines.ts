// Deadlines of one length for many pending operations (a request body, a publish's confirm), on one
// timer. A timer each would be armed and cleared on every request, an insert and a removal in the
// runtime's timer lists (BENCHMARKS.md section 0); here a deadline is an entry in a Set, and the one
// timer, armed for the oldest deadline, is left to fire even when that deadline was cancelled:
// firing finds the next one due, so under load the timer is armed about once per timeout, not per request.

/** A pending deadline: pass it to Deadlines.cancel once the operation is over. */
export interface Deadline {
  readonly due: number;
  readonly onExpire: () => void;
}

export class Deadlines {
  readonly #timeoutMs: number;
  readonly #now: () => number;
  /** In the order they were set, which is the order they fall due: every one is `timeoutMs` long. */
  readonly #pending = new Set<Deadline>();
  /** Armed while a deadline is pending, no later than the oldest is due; unreferenced, so it never holds the process. */
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `now`: monotonic milliseconds, read when a deadline is set and when the timer fires. */
  constructor(timeoutMs: number, now: () => number = () => performance.now()) {
    this.#timeoutMs = timeoutMs;
    this.#now = now;
  }

  /** Calls `onExpire` once `timeoutMs` have passed, unless the deadline is cancelled first. */
  start(onExpire: () => void): Deadline {
    const deadline: Deadline = { due: this.#now() + this.#timeoutMs, onExpire };
    this.#pending.add(deadline);
    this.#timer ??= this.#arm(this.#timeoutMs);
    return deadline;
  }

  /** The operation ended in time (or expired: cancelling again is harmless). The timer stays armed. */
  cancel(deadline: Deadline): void {
    this.#pending.delete(deadline);
  }

  #arm(ms: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => this.#expire(), ms);
    timer.unref?.();
    return timer;
  }

  /** Re-armed for the next deadline before any `onExpire` runs, which may start or cancel others. */
  #expire(): void {
    const now = this.#now();
    const expired: Deadline[] = [];
    for (const deadline of this.#pending) {
      if (deadline.due > now) break;
      expired.push(deadline);
    }
    for (const deadline of expired) this.#pending.delete(deadline);
    const next = this.#pending.values().next();
    this.#timer = next.done === true ? undefined : this.#arm(next.value.due - now);
    for (const deadline of expired) deadline.onExpire();
  }
}
