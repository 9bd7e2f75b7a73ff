// A stand-in for the Redis store (the SharedStore boundary of redisLimiter.ts) that fails on demand
// the ways redisConnection.ts reports the real client failing: ClientOfflineError while there is
// no connection (disableOfflineQueue), an ErrorReply when Redis refuses, and silence from a dead path.
import { ClientOfflineError, SimpleError } from '@redis/client';
import type { SharedStore } from '../src/rateLimit/redisLimiter.ts';
import type { StoreOutcome } from '../src/rateLimit/redisStore.ts';
import { SlidingLogLimiter } from '../src/rateLimit/slidingLog.ts';

export type StoreMode = 'answer' | 'unreachable' | 'error' | 'silent';

export class FakeSharedStore implements SharedStore {
  /** Decides as Redis would: the same policy, its own log (what the other replicas share). */
  readonly #shared: SlidingLogLimiter;
  #mode: StoreMode = 'answer';
  readonly #silent: Array<() => void> = [];
  /** Keys of every request the store was asked about. */
  readonly asked: string[] = [];

  constructor(policy: { readonly maxRequests: number; readonly windowMs: number }, now: () => number) {
    this.#shared = new SlidingLogLimiter({ ...policy, maxKeys: 1_000, now });
  }

  get ready(): boolean {
    return this.#mode !== 'unreachable';
  }

  /** How later requests end; `silent` ones wait until answerSilent(). */
  set mode(mode: StoreMode) {
    this.#mode = mode;
  }

  /** Answers every request left waiting by `silent`, late, as a Redis that was only slow would. */
  answerSilent(): void {
    for (const answer of this.#silent.splice(0)) answer();
  }

  get waiting(): number {
    return this.#silent.length;
  }

  async hit(key: string): Promise<StoreOutcome> {
    this.asked.push(key);
    switch (this.#mode) {
      case 'unreachable':
        return { kind: 'unreachable', error: new ClientOfflineError() };
      case 'error':
        return { kind: 'error', error: new SimpleError("OOM command not allowed when used memory > 'maxmemory'.") };
      case 'silent':
        return new Promise((resolve) => this.#silent.push(() => resolve({ kind: 'decided', decision: this.#shared.hit(key) })));
      case 'answer':
        return { kind: 'decided', decision: this.#shared.hit(key) };
    }
  }
}
