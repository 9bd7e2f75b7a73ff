// Settings from the environment, checked once at start-up. `loadConfig` is pure: it reads the
// object it is given (only server.ts passes process.env) and throws one error naming every bad variable.
import { EnvReader, readBrokerSettings } from '@event-tracker/common/env.ts';
import { parseIpRange } from './clientKey.ts';
import type { IpRange, TrustProxy } from './clientKey.ts';
import { MAX_EVENT_BYTES } from '@event-tracker/common/eventContract.ts';
import type { LevelName } from '@event-tracker/common/logger.ts';
import type { TopologyOptions } from '@event-tracker/common/topology.ts';

export { ConfigError } from '@event-tracker/common/env.ts';

export const DEFAULTS = {
  API_HOST: '0.0.0.0',
  API_PORT: 3000,
  QUEUE_NAME: 'user_activities',
  QUEUE_TYPE: 'quorum',
  QUEUE_DELIVERY_LIMIT: 10,
  MAX_BODY_BYTES: 65_536,
  PUBLISH_TIMEOUT_MS: 5_000,
  MAX_UNCONFIRMED: 1_000,
  AMQP_HEARTBEAT_SECONDS: 5,
  RATE_LIMIT_MAX_REQUESTS: 50,
  RATE_LIMIT_WINDOW_MS: 60_000,
  RATE_LIMIT_MAX_KEYS: 1_000_000,
  RATE_LIMIT_SWEEP_INTERVAL_MS: 60_000,
  RATE_LIMIT_IPV6_PREFIX: 56,
  TRUST_PROXY: 0,
  SHUTDOWN_TIMEOUT_MS: 10_000,
  HEADERS_TIMEOUT_MS: 10_000,
  KEEP_ALIVE_TIMEOUT_MS: 65_000,
  MAX_CONNECTIONS: 10_000,
  REQUEST_TIMEOUT_MS: 30_000,
  LOG_LEVEL: 'info',
} as const;

export interface Config {
  readonly rabbitmqUrl: string;
  readonly host: string;
  readonly port: number;
  readonly topology: TopologyOptions;
  readonly maxBodyBytes: number;
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
  /** ...and the whole request within this long (at most 30 s). */
  readonly requestTimeoutMs: number;
  readonly logLevel: LevelName;
}

export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const read = new EnvReader(env, DEFAULTS);
  const { rabbitmqUrl, topology, heartbeatSeconds, shutdownTimeoutMs, logLevel } = readBrokerSettings(read);
  const config: Config = {
    rabbitmqUrl,
    host: read.text('API_HOST'),
    port: read.integer('API_PORT', 0, 65_535),
    topology,
    // Bounded so that every event fits a MongoDB document with room to spare (see MAX_EVENT_BYTES).
    maxBodyBytes: read.integer('MAX_BODY_BYTES', 1, MAX_EVENT_BYTES),
    publishTimeoutMs: read.integer('PUBLISH_TIMEOUT_MS', 1),
    maxUnconfirmed: read.integer('MAX_UNCONFIRMED', 1),
    heartbeatSeconds,
    rateLimit: {
      maxRequests: read.integer('RATE_LIMIT_MAX_REQUESTS', 1),
      windowMs: read.integer('RATE_LIMIT_WINDOW_MS', 1_000),
      maxKeys: read.integer('RATE_LIMIT_MAX_KEYS', 1),
      sweepIntervalMs: read.integer('RATE_LIMIT_SWEEP_INTERVAL_MS', 1_000),
      ipv6Prefix: read.integer('RATE_LIMIT_IPV6_PREFIX', 1, 128),
    },
    trustProxy: readTrustProxy(read),
    shutdownTimeoutMs,
    headersTimeoutMs: read.integer('HEADERS_TIMEOUT_MS', 100, DEFAULTS.HEADERS_TIMEOUT_MS),
    keepAliveTimeoutMs: read.integer('KEEP_ALIVE_TIMEOUT_MS', 1_000, 600_000),
    maxConnections: read.integer('MAX_CONNECTIONS', 1, 1_000_000),
    requestTimeoutMs: read.integer('REQUEST_TIMEOUT_MS', 100, DEFAULTS.REQUEST_TIMEOUT_MS),
    logLevel,
  };
  if (read.valid('HEADERS_TIMEOUT_MS', 'REQUEST_TIMEOUT_MS') && config.headersTimeoutMs > config.requestTimeoutMs) {
    read.fail('HEADERS_TIMEOUT_MS', `HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS (got ${config.headersTimeoutMs} > ${config.requestTimeoutMs})`);
  }
  return read.done(config);
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
