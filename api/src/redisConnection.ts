// The API's Redis connection, for the shared rate limit: connects and reconnects in the background,
// runs Lua scripts by digest, and says how each call ended as data, so a caller never sees a throw.
//
// @redis/client reconnects by itself after a refused or dropped connection, but not after one that
// stays open and stops answering: commands written to a silently dead path (a frozen host, a
// dropped route) wait forever, and a connection accepted by something that never completes the
// handshake is never ready. A watchdog replaces the client when either lasts `stallMs`.
import { createHash } from 'node:crypto';
import { createClient, ErrorReply } from '@redis/client';
import { backoffDelay, type BackoffOptions } from '@event-tracker/common/backoff.ts';
import type { Clock } from '@event-tracker/common/clock.ts';
import type { Logger } from '@event-tracker/common/logger.ts';

export interface LuaScript {
  readonly source: string;
  readonly sha1: string;
}

export function luaScript(source: string): LuaScript {
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

/**
 * How a script call ended: Redis's reply; `unreachable` when there was no working connection (not
 * connected yet, reconnecting, lost with the command in flight, closed); `error` when Redis
 * answered with an error reply (OOM, WRONGTYPE, a script error).
 */
export type ScriptOutcome =
  | { readonly kind: 'reply'; readonly reply: unknown }
  | { readonly kind: 'unreachable' | 'error'; readonly error: Error };

/** What the Redis store needs of a connection; tests put a fake here. */
export interface ScriptRunner {
  run(script: LuaScript, keys: readonly string[], args: readonly string[]): Promise<ScriptOutcome>;
  /** Connected and through the handshake: a call now is written at once. */
  readonly ready: boolean;
}

export interface RedisConnectionOptions {
  readonly url: string;
  readonly logger: Logger;
  readonly clock: Pick<Clock, 'now'>;
  /** An open connection that answers nothing for this long is dropped and made again. */
  readonly stallMs?: number;
  readonly connectTimeoutMs?: number;
  readonly retry?: BackoffOptions;
}

/** Longer than any sane command here (the limiter's script runs in microseconds), short for an outage. */
const STALL_MS = 2_000;
const CONNECT_TIMEOUT_MS = 1_000;
/** A restarted Redis is found within about a second; an absent one costs a connect every 2 s. */
const RETRY: BackoffOptions = { baseMs: 100, maxMs: 2_000 };

function newClient(options: RedisConnectionOptions) {
  return createClient({
    url: options.url,
    // RESP2, which every Redis from 5 on speaks (RESP3 needs HELLO, Redis 6); the script's reply,
    // three integers, reads the same in both.
    RESP: 2,
    // Refused at once while disconnected, not queued: a request the fallback decided must not be
    // replayed into Redis on reconnect, and a queue would grow with every request of an outage.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
      reconnectStrategy: (retries) => backoffDelay(retries + 1, options.retry ?? RETRY),
    },
  });
}

type Client = ReturnType<typeof newClient>;

export class RedisConnection implements ScriptRunner {
  readonly #options: RedisConnectionOptions;
  readonly #stallMs: number;
  #client: Client;
  #closed = false;
  /** Calls not yet answered, and the time of the last answer (or of the first call) while any waits. */
  #pending = 0;
  #waitingSince: number | undefined;
  /** When the current socket connected, while its handshake is unanswered. */
  #connectedAt: number | undefined;
  readonly #watchdog: ReturnType<typeof setInterval>;

  constructor(options: RedisConnectionOptions) {
    this.#options = options;
    this.#stallMs = options.stallMs ?? STALL_MS;
    this.#client = this.#connect();
    this.#watchdog = setInterval(() => this.#checkStall(), Math.max(10, this.#stallMs / 4));
    this.#watchdog.unref();
  }

  get ready(): boolean {
    return this.#client.isReady;
  }

  async run(script: LuaScript, keys: readonly string[], args: readonly string[]): Promise<ScriptOutcome> {
    const client = this.#client;
    const command = (name: string, body: string) => client.sendCommand([name, body, String(keys.length), ...keys, ...args]);
    this.#started();
    try {
      try {
        return { kind: 'reply', reply: await command('EVALSHA', script.sha1) };
      } catch (error) {
        // A restarted or flushed Redis has forgotten the script: EVAL sends it, and caches it again.
        if (!(error instanceof ErrorReply && error.message.startsWith('NOSCRIPT'))) throw error;
        return { kind: 'reply', reply: await command('EVAL', script.source) };
      }
    } catch (error) {
      const cause = error instanceof Error ? error : new Error(String(error));
      return { kind: error instanceof ErrorReply ? 'error' : 'unreachable', error: cause };
    } finally {
      this.#answered();
    }
  }

  /** Stops reconnecting and drops the connection; calls still waiting end `unreachable`. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#watchdog);
    this.#client.destroy();
  }

  #connect(): Client {
    const client = newClient(this.#options);
    // The client emits 'error' on every failed reconnect; the limiter logs the outage once, by its
    // effect on requests. Without a listener an 'error' event would crash the process.
    client.on('error', (err: unknown) => this.#options.logger.debug('redis connection error', { err }));
    // Events fire later, once #client is assigned; a replaced client's must not touch the current one's.
    const handshake = (started: boolean) => () => {
      if (client === this.#client) this.#connectedAt = started ? this.#options.clock.now() : undefined;
    };
    client.on('connect', handshake(true));
    client.on('ready', handshake(false));
    client.on('end', handshake(false));
    // Rejects only once the client is destroyed; until then it retries by reconnectStrategy.
    client.connect().catch(() => {});
    return client;
  }

  #started(): void {
    if (this.#pending === 0) this.#waitingSince = this.#options.clock.now();
    this.#pending += 1;
  }

  #answered(): void {
    this.#pending -= 1;
    this.#waitingSince = this.#pending === 0 ? undefined : this.#options.clock.now();
  }

  #checkStall(): void {
    const now = this.#options.clock.now();
    const stalled = (since: number | undefined) => since !== undefined && now - since >= this.#stallMs;
    if (this.#closed || !(stalled(this.#waitingSince) || stalled(this.#connectedAt))) return;
    this.#options.logger.warn('redis connection answers nothing; connecting again', { stallMs: this.#stallMs, waiting: this.#pending });
    this.#waitingSince = undefined;
    this.#connectedAt = undefined;
    const stuck = this.#client;
    this.#client = this.#connect();
    // Its waiting calls end `unreachable` (DisconnectsClientError) and its socket is gone.
    stuck.destroy();
  }
}
