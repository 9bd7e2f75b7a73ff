// Deadlines of one length for many pending operations (a request body, a publish's confirm), on one
// timer. A timer each would be armed and cleared on every request, an insert and a removal in the
// runtime's timer lists (BENCHMARKS.md section 0); here a deadline is a link in a list, and the one
// timer, armed for the oldest deadline, is left to fire even when that deadline was cancelled:
// firing finds the next one due, so under load the timer is armed about once per timeout, not per request.
//
// A list rather than a Set: V8 rehashes a Set that is added to and deleted from on every request
// into a new table, and each old table keeps a pointer to the next. One such table promoted to
// the old generation held every later table, and every pending operation they had held, through
// each young-generation GC until the next full one: 2 MB promoted per GC and 5-8 ms pauses under
// the side-by-side load, against 0.7-2 ms without (BENCHMARKS.md section 0).

/** A pending deadline: pass it to Deadlines.cancel once the operation is over. */
export interface Deadline {
  readonly due: number;
}

interface Link extends Deadline {
  onExpire: (() => void) | undefined;
  previous: Link | undefined;
  next: Link | undefined;
}

export class Deadlines {
  readonly #timeoutMs: number;
  readonly #now: () => number;
  /** Oldest and newest pending deadline: every one is `timeoutMs` long, so the order set is the order due. */
  #first: Link | undefined;
  #last: Link | undefined;
  /** Armed while a deadline is pending, no later than the oldest is due; unreferenced, so it never holds the process. */
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `now`: monotonic milliseconds, read when a deadline is set and when the timer fires. */
  constructor(timeoutMs: number, now: () => number = () => performance.now()) {
    this.#timeoutMs = timeoutMs;
    this.#now = now;
  }

  /** Calls `onExpire` once `timeoutMs` have passed, unless the deadline is cancelled first. */
  start(onExpire: () => void): Deadline {
    const link: Link = { due: this.#now() + this.#timeoutMs, onExpire, previous: this.#last, next: undefined };
    if (this.#last === undefined) this.#first = link;
    else this.#last.next = link;
    this.#last = link;
    this.#timer ??= this.#arm(this.#timeoutMs);
    return link;
  }

  /** The operation ended in time (or expired: cancelling again is harmless). The timer stays armed. */
  cancel(deadline: Deadline): void {
    const link = deadline as Link;
    if (link.onExpire === undefined) return;
    if (link.previous === undefined) this.#first = link.next;
    else link.previous.next = link.next;
    if (link.next === undefined) this.#last = link.previous;
    else link.next.previous = link.previous;
    // Holds nothing once out of the list, wherever the garbage collector finds it.
    link.onExpire = link.previous = link.next = undefined;
  }

  #arm(ms: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => this.#expire(), ms);
    timer.unref?.();
    return timer;
  }

  /** Re-armed for the next deadline before any `onExpire` runs, which may start or cancel others. */
  #expire(): void {
    const now = this.#now();
    const expired: Array<() => void> = [];
    while (this.#first !== undefined && this.#first.due <= now) {
      expired.push(this.#first.onExpire!);
      this.cancel(this.#first);
    }
    this.#timer = this.#first === undefined ? undefined : this.#arm(this.#first.due - now);
    for (const onExpire of expired) onExpire();
  }
}
