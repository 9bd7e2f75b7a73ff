// The consumer's configuration, read from the environment once at start-up. `loadConfig` is pure:
// it checks every variable and throws one ConfigError naming each bad one on its own line.
import type { BackoffOptions } from '@event-tracker/common/backoff.ts';
import { EnvReader } from '@event-tracker/common/env.ts';
import { SHARED_DEFAULTS, readSharedSettings, type SharedSettings } from '@event-tracker/common/sharedSettings.ts';

export { ConfigError } from '@event-tracker/common/env.ts';

/** RABBITMQ_URL, the queue topology, heartbeat, shutdown and log level: read as the API reads them. */
export interface Config extends SharedSettings {
  readonly databaseUrl: string;
  /** Taken from the path of DATABASE_URL. */
  readonly databaseName: string;
  /** `w` of every insert: "majority" (a replica set's acknowledged-by-most), or a member count. */
  readonly writeConcern: WriteConcernW;
  readonly prefetch: number;
  readonly batchSize: number;
  readonly batchMaxWaitMs: number;
  /** How long one batch write may go unanswered before it counts as failed and is retried. */
  readonly writeTimeoutMs: number;
  readonly healthHost: string;
  /** 0 asks the OS for a free port; the bound port is logged. */
  readonly healthPort: number;
  /** The capped exponential back-off between database retries (index creation, batch writes). */
  readonly databaseRetry: BackoffOptions;
  /** The capped exponential back-off between broker reconnects. */
  readonly brokerReconnect: BackoffOptions;
}

export type WriteConcernW = 'majority' | number;

export const DEFAULTS = {
  ...SHARED_DEFAULTS,
  DATABASE_WRITE_CONCERN: 'majority',
  // The pair past which a larger one stores little more per second but doubles what a consumer
  // holds and a crash redelivers (bench/consumer.ts; BENCHMARKS.md section 4).
  PREFETCH: 500,
  BATCH_SIZE: 250,
  BATCH_MAX_WAIT_MS: 20,
  WRITE_TIMEOUT_MS: 15_000,
  HEALTH_HOST: '0.0.0.0',
  HEALTH_PORT: 8001,
  DATABASE_RETRY_BASE_MS: 100,
  DATABASE_RETRY_MAX_MS: 30_000,
  BROKER_RECONNECT_BASE_MS: 100,
  BROKER_RECONNECT_MAX_MS: 30_000,
  // Deprecated, read for one release: where set, the value of both pairs above that are unset.
  RETRY_BASE_MS: '',
  RETRY_MAX_MS: '',
} as const;

/** The one back-off pair that drove both database retries and broker reconnects before there were two. */
const DEPRECATED_RETRY = ['RETRY_BASE_MS', 'RETRY_MAX_MS'] as const;

const MAX_BACKOFF_MS = 3_600_000;

export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const read = new EnvReader(env, DEFAULTS);
  const broker = readSharedSettings(read);

  const databaseUrl = read.required('DATABASE_URL', 'a mongodb:// or mongodb+srv:// URL naming the database');
  const databaseName = databaseNameOf(databaseUrl) ?? '';
  // Checked by hand, not with URL: the WHATWG parser rejects the host lists of replica-set URLs.
  if (databaseUrl !== '' && !/^mongodb(\+srv)?:\/\/[^/]/.test(databaseUrl)) read.fail('DATABASE_URL', 'DATABASE_URL must be a mongodb:// or mongodb+srv:// URL');
  else if (databaseUrl !== '' && !databaseName) read.fail('DATABASE_URL', 'DATABASE_URL must name the database in its path, e.g. mongodb://host:27017/activity_db');

  const backoffs = readBackoffs(read);
  const config: Config = {
    ...broker,
    databaseUrl,
    databaseName,
    writeConcern: readWriteConcern(read),
    // basic.qos prefetch-count is a 16-bit field; 0 would mean "unlimited", which defeats its purpose.
    prefetch: read.integer('PREFETCH', 1, 65_535),
    batchSize: read.integer('BATCH_SIZE', 1, 65_535),
    batchMaxWaitMs: read.integer('BATCH_MAX_WAIT_MS', 0, 60_000),
    writeTimeoutMs: read.integer('WRITE_TIMEOUT_MS', 100, 3_600_000),
    healthHost: read.text('HEALTH_HOST'),
    healthPort: read.integer('HEALTH_PORT', 0, 65_535),
    databaseRetry: { baseMs: backoffs.databaseRetry.baseMs, maxMs: backoffs.databaseRetry.maxMs },
    brokerReconnect: { baseMs: backoffs.brokerReconnect.baseMs, maxMs: backoffs.brokerReconnect.maxMs },
  };

  // A batch larger than the prefetch window could never fill, so every batch would wait the full timer.
  if (read.valid('BATCH_SIZE', 'PREFETCH') && config.batchSize > config.prefetch) {
    read.fail('BATCH_SIZE', `BATCH_SIZE (${config.batchSize}) must not exceed PREFETCH (${config.prefetch})`);
  }
  refuseBaseAboveCap(read, [backoffs.databaseRetry, backoffs.brokerReconnect]);
  return read.done(config);
}

/** Warnings for the log at start-up: the deprecated variables that are set, with what replaces them. */
export function startupWarnings(env: Readonly<Record<string, string | undefined>>): string[] {
  const read = new EnvReader(env, DEFAULTS);
  return DEPRECATED_RETRY.filter((name) => read.isSet(name)).map((name) => {
    const [database, broker] = name === 'RETRY_BASE_MS' ? ['DATABASE_RETRY_BASE_MS', 'BROKER_RECONNECT_BASE_MS'] : ['DATABASE_RETRY_MAX_MS', 'BROKER_RECONNECT_MAX_MS'];
    return `${name} is deprecated and will be removed in the next release: set ${database} and ${broker} instead (until then it stands for whichever of them is unset)`;
  });
}

/** A back-off pair as read, with the variables its two values came from (for the cross-check). */
interface ReadBackoff extends BackoffOptions {
  readonly baseName: string;
  readonly maxName: string;
}

/**
 * DATABASE_RETRY_* and BROKER_RECONNECT_*, each falling back to the deprecated RETRY_BASE_MS and
 * RETRY_MAX_MS where it is unset and they are set.
 */
function readBackoffs(read: EnvReader): Record<'databaseRetry' | 'brokerReconnect', ReadBackoff> {
  // Every name a literal of a read, so that the docs test sees each variable read.
  const deprecatedBase = read.isSet('RETRY_BASE_MS') ? { name: 'RETRY_BASE_MS', value: read.integer('RETRY_BASE_MS', 1, MAX_BACKOFF_MS) } : undefined;
  const deprecatedMax = read.isSet('RETRY_MAX_MS') ? { name: 'RETRY_MAX_MS', value: read.integer('RETRY_MAX_MS', 1, MAX_BACKOFF_MS) } : undefined;
  /** The variable's value (or default) unless it is unset and the deprecated one is set. */
  const setting = (name: string, value: number, deprecated: { name: string; value: number } | undefined) =>
    deprecated === undefined || read.isSet(name) ? { name, value } : deprecated;
  const pair = (base: { name: string; value: number }, max: { name: string; value: number }): ReadBackoff => ({
    baseMs: base.value,
    maxMs: max.value,
    baseName: base.name,
    maxName: max.name,
  });
  return {
    databaseRetry: pair(
      setting('DATABASE_RETRY_BASE_MS', read.integer('DATABASE_RETRY_BASE_MS', 1, MAX_BACKOFF_MS), deprecatedBase),
      setting('DATABASE_RETRY_MAX_MS', read.integer('DATABASE_RETRY_MAX_MS', 1, MAX_BACKOFF_MS), deprecatedMax),
    ),
    brokerReconnect: pair(
      setting('BROKER_RECONNECT_BASE_MS', read.integer('BROKER_RECONNECT_BASE_MS', 1, MAX_BACKOFF_MS), deprecatedBase),
      setting('BROKER_RECONNECT_MAX_MS', read.integer('BROKER_RECONNECT_MAX_MS', 1, MAX_BACKOFF_MS), deprecatedMax),
    ),
  };
}

/** A base above its cap is refused, naming the variables the two came from; once where both pairs came from the deprecated one. */
function refuseBaseAboveCap(read: EnvReader, backoffs: readonly ReadBackoff[]): void {
  const reported = new Set<string>();
  for (const { baseMs, maxMs, baseName, maxName } of backoffs) {
    const problem = `${baseName} (${baseMs}) must not exceed ${maxName} (${maxMs})`;
    if (read.valid(baseName, maxName) && baseMs > maxMs && !reported.has(problem)) {
      reported.add(problem);
      read.fail(baseName, problem);
    }
  }
}

/**
 * The database named in the path of a MongoDB connection string. Parsed by hand because the WHATWG
 * URL parser rejects the comma-separated host lists that replica-set URLs use.
 */
export function databaseNameOf(url: string): string | undefined {
  const rest = url.replace(/^[a-z+]+:\/\//i, '');
  const slash = rest.indexOf('/');
  if (slash < 0) return undefined;
  const path = rest.slice(slash + 1).split('?')[0] ?? '';
  try {
    return decodeURIComponent(path) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * DATABASE_WRITE_CONCERN: "majority" (default) or a number of members from 1. An insert is acked
 * to RabbitMQ only once the database has it at this concern, so on a replica set "majority" is
 * what keeps a stored event through a primary failover.
 */
function readWriteConcern(read: EnvReader): WriteConcernW {
  const text = read.text('DATABASE_WRITE_CONCERN');
  if (text === 'majority') return text;
  if (/^[1-9]\d{0,1}$/.test(text)) return Number(text);
  read.fail('DATABASE_WRITE_CONCERN', `DATABASE_WRITE_CONCERN must be "majority" or a number of members from 1 to 99 (got "${text}")`);
  return 'majority';
}
