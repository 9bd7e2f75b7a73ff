// The sliding log in Redis, shared by every API replica: one sorted set per client key (score: the
// request's time in microseconds), read and updated by one Lua script per request, so a decision
// is one round trip and atomic however many replicas ask at once. The answers are the in-process
// store's (slidingLog.ts): the same window edges, refused requests not logged, the same resetMs.
import { randomBytes } from 'node:crypto';
import type { Decision } from './types.ts';
import { luaScript, type ScriptRunner } from '../redisConnection.ts';

/**
 * KEYS[1]: the client's sorted set. ARGV: limit, window in µs, now in µs (empty: Redis TIME),
 * a member no other request has, window in ms (the key's expiry).
 * Returns {allowed 0|1, remaining, µs until the oldest logged request leaves the window}.
 *
 * The clock is Redis's own TIME, so replicas whose clocks differ still share one window. Entries at
 * or before now - window have left (as in the memory store), and the key expires a window after
 * its newest entry, when every entry has left: an idle client costs nothing. Scores of ~1.7e15 µs
 * are exact in a double, and Redis formats numbers it is passed from Lua with 17 digits.
 */
export const SLIDING_LOG_SCRIPT = luaScript(`
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if now == nil then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  count = count + 1
  allowed = 1
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
-- TIME is Redis's wall clock: stepped back, the oldest entry would seem to leave after more than a window.
return {allowed, limit - count, math.min(oldest + window - now, window)}
`);

export interface RedisStoreOptions {
  readonly runner: ScriptRunner;
  /** RATE_LIMIT_REDIS_PREFIX: put before every client key. */
  readonly prefix: string;
  readonly maxRequests: number;
  readonly windowMs: number;
  /**
   * Tests only: the time in milliseconds to decide at, instead of Redis TIME, so the contract suite
   * can step time against a real Redis as it does against the memory store. Production passes none.
   */
  readonly now?: () => number;
}

/** A decision, or why Redis gave none (the limiter then decides in process). */
export type StoreOutcome = { readonly kind: 'decided'; readonly decision: Decision } | { readonly kind: 'unreachable' | 'error'; readonly error: Error };

export class RedisStore {
  readonly #options: RedisStoreOptions;
  readonly #args: readonly [string, string];
  /**
   * Two requests of one client can share a microsecond (on one replica or two), and a sorted set
   * holds a member once: each request's member is this process's random tag and a counter.
   */
  readonly #tag = randomBytes(6).toString('base64url');
  #sequence = 0;

  constructor(options: RedisStoreOptions) {
    this.#options = options;
    this.#args = [String(options.maxRequests), String(options.windowMs * 1000)];
  }

  get ready(): boolean {
    return this.#options.runner.ready;
  }

  async hit(key: string): Promise<StoreOutcome> {
    const { runner, prefix, maxRequests: limit, windowMs, now } = this.#options;
    this.#sequence += 1;
    const at = now === undefined ? '' : String(Math.round(now() * 1000));
    const member = `${this.#tag}${this.#sequence.toString(36)}`;
    const outcome = await runner.run(SLIDING_LOG_SCRIPT, [prefix + key], [...this.#args, at, member, String(windowMs)]);
    if (outcome.kind !== 'reply') return outcome;
    const reply = outcome.reply;
    if (!Array.isArray(reply) || reply.length !== 3 || !reply.every((value) => typeof value === 'number')) {
      return { kind: 'error', error: new Error(`unexpected reply from the rate-limit script: ${JSON.stringify(reply)}`) };
    }
    const [allowed, remaining, resetUs] = reply as [number, number, number];
    return { kind: 'decided', decision: { allowed: allowed === 1, limit, remaining, windowMs, resetMs: resetUs / 1000 } };
  }
}
