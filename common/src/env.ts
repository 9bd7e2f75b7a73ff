// Reading settings from the environment: every problem is collected, so start-up fails once naming
// each bad variable, and the settings both services read (broker, queue, shutdown, logging) are
// read by one function, so the API and the consumer cannot accept different values for them.
import { parseNodeList, type BrokerNode } from './broker/nodes.ts';
import type { QueueType, TopologyOptions } from './broker/topology.ts';
import type { LevelName } from './logger.ts';

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export class EnvReader {
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #defaults: Readonly<Record<string, string | number>>;
  readonly #problems: string[] = [];
  readonly #invalid = new Set<string>();

  constructor(env: Readonly<Record<string, string | undefined>>, defaults: Readonly<Record<string, string | number>>) {
    this.#env = env;
    this.#defaults = defaults;
  }

  /** The value, or its default; an empty value counts as unset, so `API_PORT=` means the default. */
  text(name: string): string {
    const value = this.#env[name];
    return value === undefined || value === '' ? String(this.#defaults[name] ?? '') : value;
  }

  required(name: string, what: string): string {
    const value = this.text(name);
    if (value === '') this.fail(name, `${name} is required (${what})`);
    return value;
  }

  /** A whole number in [min, max]; a bad one is reported and read as its default. */
  integer(name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const text = this.text(name);
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    if (value >= min && value <= max) return value;
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    this.fail(name, `${name} must be an integer ${range} (got "${text}")`);
    return Number(this.#defaults[name]);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[]): T {
    const text = this.text(name);
    if ((allowed as readonly string[]).includes(text)) return text as T;
    this.fail(name, `${name} must be one of ${allowed.join(', ')} (got "${text}")`);
    return this.#defaults[name] as T;
  }

  fail(name: string, problem: string): void {
    this.#invalid.add(name);
    this.#problems.push(problem);
  }

  /** True when none of `names` was reported: cross-checks between variables only make sense then. */
  valid(...names: string[]): boolean {
    return names.every((name) => !this.#invalid.has(name));
  }

  /** The finished configuration, frozen; throws one ConfigError listing every problem. */
  done<T extends object>(config: T): Readonly<T> {
    if (this.#problems.length > 0) throw new ConfigError(this.#problems);
    return Object.freeze(config);
  }
}

/** What both services read the same way. */
export interface BrokerSettings {
  readonly brokerNodes: readonly BrokerNode[];
  readonly topology: TopologyOptions;
  readonly heartbeatSeconds: number;
  readonly shutdownTimeoutMs: number;
  readonly logLevel: LevelName;
}

const QUEUE_TYPES: readonly QueueType[] = ['quorum', 'classic'];
const LOG_LEVELS: readonly LevelName[] = ['debug', 'info', 'warn', 'error', 'fatal'];

/** AMQP names are at most 255 bytes; the longest suffix a queue name gets is ".partitions". */
const MAX_QUEUE_NAME_BYTES = 240;

export function readBrokerSettings(read: EnvReader): BrokerSettings {
  // The URLs carry credentials, so no message repeats them.
  const nodeList = read.required('RABBITMQ_URL', 'an amqp:// or amqps:// URL, or a comma-separated list of them');
  const { nodes, problems } = nodeList === '' ? { nodes: [], problems: [] } : parseNodeList(nodeList);
  for (const problem of problems) read.fail('RABBITMQ_URL', problem);

  const queueName = read.text('QUEUE_NAME');
  if (Buffer.byteLength(queueName) > MAX_QUEUE_NAME_BYTES || queueName === '' || queueName.startsWith('amq.')) {
    read.fail('QUEUE_NAME', `QUEUE_NAME must be 1 to ${MAX_QUEUE_NAME_BYTES} bytes and not start with "amq." (got "${queueName}")`);
  }
  const exchange = read.text('EVENTS_EXCHANGE');
  // "" is the default exchange, which cannot be bound to; "amq." names are reserved by the broker.
  if (Buffer.byteLength(exchange) > 255 || exchange === '' || exchange.startsWith('amq.')) {
    read.fail('EVENTS_EXCHANGE', `EVENTS_EXCHANGE must be 1 to 255 bytes and not start with "amq." (got "${exchange}")`);
  }
  return {
    brokerNodes: nodes,
    topology: Object.freeze({
      exchange,
      queueName,
      queueType: read.oneOf('QUEUE_TYPE', QUEUE_TYPES),
      deliveryLimit: read.integer('QUEUE_DELIVERY_LIMIT', 1, 1_000_000),
      // RabbitMQ advises odd sizes up to 7: more members add write latency, not safety.
      replicas: read.integer('QUEUE_REPLICAS', 1, 7),
      partitions: read.integer('QUEUE_PARTITIONS', 1, 64),
    }),
    heartbeatSeconds: read.integer('AMQP_HEARTBEAT_SECONDS', 1, 3_600),
    shutdownTimeoutMs: read.integer('SHUTDOWN_TIMEOUT_MS', 0, 600_000),
    logLevel: read.oneOf('LOG_LEVEL', LOG_LEVELS),
  };
}

/** A URL with a host and one of `protocols` (e.g. `['amqp:', 'amqps:']`). */
export function isUrlOf(value: string, protocols: readonly string[]): boolean {
  try {
    const url = new URL(value);
    return protocols.includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
}
