// Settings from the environment, checked once at start-up. `loadConfig` is pure: it reads the
// object it is given (only server.ts passes process.env) and throws one error naming every bad variable.
import { EnvReader, readBrokerSettings } from '@event-tracker/common/env.ts';
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
  TRUST_PROXY: 0,
  SHUTDOWN_TIMEOUT_MS: 10_000,
  HEADERS_TIMEOUT_MS: 10_000,
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
  };
  /** How many proxy hops in front of the API append to X-Forwarded-For; 0 ignores the header. */
  readonly trustProxy: number;
  readonly shutdownTimeoutMs: number;
  /** A slow client must not hold a socket: whole headers within this long (at most 10 s). */
  readonly headersTimeoutMs: number;
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
    },
    trustProxy: read.integer('TRUST_PROXY', 0, 100),
    shutdownTimeoutMs,
    headersTimeoutMs: read.integer('HEADERS_TIMEOUT_MS', 100, DEFAULTS.HEADERS_TIMEOUT_MS),
    requestTimeoutMs: read.integer('REQUEST_TIMEOUT_MS', 100, DEFAULTS.REQUEST_TIMEOUT_MS),
    logLevel,
  };
  if (read.valid('HEADERS_TIMEOUT_MS', 'REQUEST_TIMEOUT_MS') && config.headersTimeoutMs > config.requestTimeoutMs) {
    read.fail('HEADERS_TIMEOUT_MS', `HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS (got ${config.headersTimeoutMs} > ${config.requestTimeoutMs})`);
  }
  return read.done(config);
}
