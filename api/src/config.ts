// Settings from the environment, checked once at start-up. `loadConfig` is pure: it reads the
// object it is given (only server.ts passes process.env) and throws one error naming every bad variable.
import { EnvReader, isUrlOf } from '@event-tracker/common/env.ts';
import { SHARED_DEFAULTS, readSharedSettings } from '@event-tracker/common/sharedSettings.ts';
import { parseIpRange, trustProxyWarning } from './clientKey.ts';
import type { IpRange, TrustProxy } from './clientKey.ts';
import { MAX_EVENT_BYTES } from '@event-tracker/common/eventContract.ts';
import { parseCorsPolicy, type CorsPolicy } from './middlewares/cors.ts';
import { MAX_WINDOW_MS } from './rateLimit/slidingLog.ts';
import { parseWriteKeys, type WriteKeys } from './middlewares/writeKey.ts';
import type { LevelName } from '@event-tracker/common/logger.ts';
import type { BrokerNode } from '@event-tracker/common/broker/nodes.ts';
import type { TopologyOptions } from '@event-tracker/common/broker/topology.ts';

export { ConfigError } from '@event-tracker/common/env.ts';

export const DEFAULTS = {
  ...SHARED_DEFAULTS,
  API_HOST: '0.0.0.0',
  API_PORT: 3000,
  MAX_BODY_BYTES: 65_536,
  MAX_BATCH_BODY_BYTES: 1_048_576,
  BATCH_MAX_EVENTS: 500,
  // Segment's documented limits for its tracking API: 32 KB per call, 500 KB per batch.
  SEGMENT_MAX_CALL_BYTES: 32_768,
  SEGMENT_MAX_BATCH_BYTES: 512_000,
  /** Unset: every ingestion route is open. */
  WRITE_KEYS: '',
  CORS_ALLOWED_ORIGINS: '*',
  PUBLISH_TIMEOUT_MS: 5_000,
  MAX_UNCONFIRMED: 1_000,
  RATE_LIMIT_MAX_REQUESTS: 50,
  RATE_LIMIT_WINDOW_MS: 60_000,
  RATE_LIMIT_MAX_KEYS: 1_000_000,
  RATE_LIMIT_SWEEP_INTERVAL_MS: 60_000,
  RATE_LIMIT_IPV6_PREFIX: 56,
  RATE_LIMIT_STORE: 'memory',
  RATE_LIMIT_REDIS_PREFIX: 'event-tracker:rl:',
  RATE_LIMIT_REDIS_TIMEOUT_MS: 50,
  TRUST_PROXY: 0,
  HEADERS_TIMEOUT_MS: 10_000,
  KEEP_ALIVE_TIMEOUT_MS: 65_000,
  MAX_CONNECTIONS: 10_000,
  // A browser opens at most 6 connections per host over HTTP/1.1, an SDK a handful: a few tens
  // covers a client behind NAT with several of them, and keeps one address from holding the API.
  MAX_CONNECTIONS_PER_CLIENT: 32,
  // At their 1 MiB limit, this many batch bodies in hand at once stay within the memory docker-compose.yml gives the API.
  MAX_IN_FLIGHT_REQUESTS: 256,
  // Far past any one request's work (its target is in BENCHMARKS.md): only a blocked or starved process gets there.
  MAX_EVENT_LOOP_DELAY_MS: 1_000,
  /** Unset: the probes and /metrics are served on API_PORT with the traffic. */
  OPS_PORT: '',
  OPS_HOST: '0.0.0.0',
  REQUEST_TIMEOUT_MS: 30_000,
} as const;

export interface Config {
  readonly brokerNodes: readonly BrokerNode[];
  readonly host: string;
  readonly port: number;
  readonly topology: TopologyOptions;
  readonly maxBodyBytes: number;
  /** A batch body, decompressed; at most MAX_EVENT_BYTES, so each of its events is too. */
  readonly maxBatchBodyBytes: number;
  readonly batchMaxEvents: number;
  /** The /v1/* (Segment) routes: a call's body, or one call of a batch, as JSON. */
  readonly segmentMaxCallBytes: number;
  /** A /v1/batch body, decompressed. */
  readonly segmentMaxBatchBytes: number;
  /** Required on every ingestion route when set; undefined leaves them open. Digests only. */
  readonly writeKeys: WriteKeys | undefined;
  readonly cors: CorsPolicy;
  readonly publishTimeoutMs: number;
  readonly maxUnconfirmed: number;
  readonly heartbeatSeconds: number;
  readonly rateLimit: {
    readonly maxRequests: number;
    readonly windowMs: number;
    readonly maxKeys: number;
    readonly sweepIntervalMs: number;
    /** IPv6 clients are limited per network of this many leading bits. */
    readonly ipv6Prefix: number;
    readonly store: RateLimitStoreConfig;
  };
  /** Whose X-Forwarded-For entries are believed: a hop count (0 ignores the header) or the proxies. */
  readonly trustProxy: TrustProxy;
  readonly shutdownTimeoutMs: number;
  /** A slow client must not hold a socket: whole headers within this long (at most 10 s). */
  readonly headersTimeoutMs: number;
  /** How long a kept-alive socket may sit idle: above load balancers' 60 s, so they close first. */
  readonly keepAliveTimeoutMs: number;
  /** Connections the server holds at once; more are closed as they arrive. */
  readonly maxConnections: number;
  /** Connections one client address (the socket's, TRUST_PROXY's proxies exempt) holds at once. */
  readonly maxConnectionsPerClient: number;
  /** New ingestion requests are answered 503 while this many are being handled... */
  readonly maxInFlightRequests: number;
  /** ...or while the event loop ran this much late at its last sample. */
  readonly maxEventLoopDelayMs: number;
  /** With OPS_PORT: the probes and /metrics are served there, and not on `port`. */
  readonly ops: { readonly host: string; readonly port: number } | undefined;
  /** ...and the whole request within this long (at most 30 s). */
  readonly requestTimeoutMs: number;
  readonly logLevel: LevelName;
}

/**
 * Where the sliding log lives: this process's memory (each replica counts alone), or Redis, shared
 * by every replica, with the in-process log as the fallback while Redis cannot answer in time.
 */
export type RateLimitStoreConfig =
  | { readonly kind: 'memory' }
  | {
      readonly kind: 'redis';
      /** Credentials included, so no message or log line repeats it. */
      readonly url: string;
      /** Put before every client key: one Redis can hold several deployments' limits. */
      readonly prefix: string;
      /** A request whose script has not answered within this long is decided by the fallback. */
      readonly timeoutMs: number;
    };

const RATE_LIMIT_STORES = ['memory', 'redis'] as const;

export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const read = new EnvReader(env, DEFAULTS);
  const { brokerNodes, topology, heartbeatSeconds, shutdownTimeoutMs, logLevel } = readSharedSettings(read);
  const config: Config = {
    brokerNodes,
    host: read.text('API_HOST'),
    port: read.integer('API_PORT', 0, 65_535),
    topology,
    // Bounded so that every event fits a MongoDB document with room to spare (see MAX_EVENT_BYTES).
    maxBodyBytes: read.integer('MAX_BODY_BYTES', 1, MAX_EVENT_BYTES),
    maxBatchBodyBytes: read.integer('MAX_BATCH_BODY_BYTES', 1, MAX_EVENT_BYTES),
    batchMaxEvents: read.integer('BATCH_MAX_EVENTS', 1, 10_000),
    segmentMaxCallBytes: read.integer('SEGMENT_MAX_CALL_BYTES', 1, MAX_EVENT_BYTES),
    segmentMaxBatchBytes: read.integer('SEGMENT_MAX_BATCH_BYTES', 1, MAX_EVENT_BYTES),
    writeKeys: readWriteKeys(read),
    cors: readCors(read),
    publishTimeoutMs: read.integer('PUBLISH_TIMEOUT_MS', 1),
    maxUnconfirmed: read.integer('MAX_UNCONFIRMED', 1),
    heartbeatSeconds,
    rateLimit: {
      maxRequests: read.integer('RATE_LIMIT_MAX_REQUESTS', 1),
      windowMs: read.integer('RATE_LIMIT_WINDOW_MS', 1_000, MAX_WINDOW_MS),
      maxKeys: read.integer('RATE_LIMIT_MAX_KEYS', 1),
      // With the window, what keeps every age the limiter reads under 2^32 ms (see MAX_WINDOW_MS).
      sweepIntervalMs: read.integer('RATE_LIMIT_SWEEP_INTERVAL_MS', 1_000, MAX_WINDOW_MS),
      ipv6Prefix: read.integer('RATE_LIMIT_IPV6_PREFIX', 1, 128),
      store: readRateLimitStore(read),
    },
    trustProxy: readTrustProxy(read),
    shutdownTimeoutMs,
    headersTimeoutMs: read.integer('HEADERS_TIMEOUT_MS', 100, DEFAULTS.HEADERS_TIMEOUT_MS),
    keepAliveTimeoutMs: read.integer('KEEP_ALIVE_TIMEOUT_MS', 1_000, 600_000),
    maxConnections: read.integer('MAX_CONNECTIONS', 1, 1_000_000),
    maxConnectionsPerClient: read.integer('MAX_CONNECTIONS_PER_CLIENT', 1, 1_000_000),
    maxInFlightRequests: read.integer('MAX_IN_FLIGHT_REQUESTS', 1, 1_000_000),
    maxEventLoopDelayMs: read.integer('MAX_EVENT_LOOP_DELAY_MS', 10, 60_000),
    ops: readOps(read),
    requestTimeoutMs: read.integer('REQUEST_TIMEOUT_MS', 100, DEFAULTS.REQUEST_TIMEOUT_MS),
    logLevel,
  };
  // A batch is refused whole when it cannot fit under the unconfirmed cap: a larger one never could.
  if (read.valid('BATCH_MAX_EVENTS', 'MAX_UNCONFIRMED') && config.batchMaxEvents > config.maxUnconfirmed) {
    read.fail('BATCH_MAX_EVENTS', `BATCH_MAX_EVENTS must not exceed MAX_UNCONFIRMED (got ${config.batchMaxEvents} > ${config.maxUnconfirmed})`);
  }
  // A batch at its limit must still be able to hold a call at its own.
  if (read.valid('SEGMENT_MAX_CALL_BYTES', 'SEGMENT_MAX_BATCH_BYTES') && config.segmentMaxCallBytes > config.segmentMaxBatchBytes) {
    read.fail('SEGMENT_MAX_CALL_BYTES', `SEGMENT_MAX_CALL_BYTES must not exceed SEGMENT_MAX_BATCH_BYTES (got ${config.segmentMaxCallBytes} > ${config.segmentMaxBatchBytes})`);
  }
  if (read.valid('HEADERS_TIMEOUT_MS', 'REQUEST_TIMEOUT_MS') && config.headersTimeoutMs > config.requestTimeoutMs) {
    read.fail('HEADERS_TIMEOUT_MS', `HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS (got ${config.headersTimeoutMs} > ${config.requestTimeoutMs})`);
  }
  if (read.valid('API_PORT', 'OPS_PORT') && config.ops !== undefined && config.ops.port === config.port && config.port !== 0) {
    read.fail('OPS_PORT', `OPS_PORT must differ from API_PORT (both ${config.port})`);
  }
  return read.done(config);
}

/** What a valid configuration still leaves open, logged as warnings at start-up. */
export function startupWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.writeKeys === undefined) warnings.push('WRITE_KEYS is empty: anyone who reaches the API can send events; set WRITE_KEYS to require a key');
  const trust = trustProxyWarning(config.trustProxy);
  if (trust !== undefined) warnings.push(trust);
  return warnings;
}

/** OPS_PORT unset keeps everything on API_PORT; OPS_HOST is read only with it. */
function readOps(read: EnvReader): Config['ops'] {
  if (read.text('OPS_PORT') === '') return undefined;
  return { host: read.text('OPS_HOST'), port: read.integer('OPS_PORT', 0, 65_535) };
}

/** A hop count as before, or a comma-separated list of proxy addresses and CIDRs (IPv4 and IPv6). */
function readTrustProxy(read: EnvReader): TrustProxy {
  const text = read.text('TRUST_PROXY');
  if (/^\d+$/.test(text)) return { kind: 'hops', hops: read.integer('TRUST_PROXY', 0, 100) };
  const entries = text.split(',').map((entry) => entry.trim());
  const ranges = entries.map(parseIpRange);
  const bad = entries.filter((_, i) => ranges[i] === undefined);
  if (bad.length > 0) {
    const listed = bad.map((entry) => `"${entry}"`).join(', ');
    read.fail('TRUST_PROXY', `TRUST_PROXY must be a hop count from 0 to 100 or a comma-separated list of IP addresses and CIDRs (not ${listed})`);
    return { kind: 'hops', hops: 0 };
  }
  return { kind: 'list', ranges: Object.freeze(ranges as IpRange[]) };
}

/** WRITE_KEYS: `name=key,...`; its problems name entries by position and never quote the text. */
function readWriteKeys(read: EnvReader): WriteKeys | undefined {
  const text = read.text('WRITE_KEYS');
  if (text.trim() === '') return undefined;
  const parsed = parseWriteKeys(text);
  if ('keys' in parsed) return parsed.keys;
  for (const problem of parsed.problems) read.fail('WRITE_KEYS', problem);
  return undefined;
}

function readCors(read: EnvReader): CorsPolicy {
  const policy = parseCorsPolicy(read.text('CORS_ALLOWED_ORIGINS'));
  if (typeof policy !== 'string') return policy;
  read.fail('CORS_ALLOWED_ORIGINS', policy);
  return { anyOrigin: true };
}

/** REDIS_URL is read, and required, only with RATE_LIMIT_STORE=redis. */
function readRateLimitStore(read: EnvReader): RateLimitStoreConfig {
  if (read.oneOf('RATE_LIMIT_STORE', RATE_LIMIT_STORES) !== 'redis') return { kind: 'memory' };
  const url = read.required('REDIS_URL', 'a redis:// or rediss:// URL, since RATE_LIMIT_STORE is redis');
  if (url !== '' && !isUrlOf(url, ['redis:', 'rediss:'])) read.fail('REDIS_URL', 'REDIS_URL must be a redis:// or rediss:// URL');
  const prefix = read.text('RATE_LIMIT_REDIS_PREFIX');
  // Printable ASCII, so a key is readable in redis-cli and cannot be split by a newline in a log line.
  if (!/^[\x21-\x7e]{1,100}$/.test(prefix)) {
    read.fail('RATE_LIMIT_REDIS_PREFIX', `RATE_LIMIT_REDIS_PREFIX must be 1 to 100 printable ASCII characters without spaces (got "${prefix}")`);
  }
  // At most a second: while Redis is slow, every request that asks it waits this long.
  return { kind: 'redis', url, prefix, timeoutMs: read.integer('RATE_LIMIT_REDIS_TIMEOUT_MS', 1, 1_000) };
}

