// Test doubles and a harness that starts the app on an ephemeral port.
import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import type { Message, Options } from 'amqplib';
import type { QueueMessage } from '@event-tracker/shared';
import type { Publisher, PublishChannel } from '../src/publisher.ts';
import { createApiMetrics } from '../src/apiMetrics.ts';
import type { ApiMetrics } from '../src/apiMetrics.ts';
import { createApp, type Audience } from '../src/app.ts';
import { DEFAULTS, loadConfig } from '../src/config.ts';
import { createLogger } from '@event-tracker/common/logger.ts';
import { LoadShedder } from '../src/overload.ts';
import { SlidingLogLimiter } from '../src/rateLimit/slidingLog.ts';
import { RedisLimiter, type SharedStore } from '../src/rateLimit/redisLimiter.ts';
import { PublishOutcomeUnknown, QueueUnavailable, batchFailure } from '../src/errors.ts';

export type LogLine = Readonly<Record<string, unknown>> & { readonly level: number; readonly msg: string };

/** A clock the test moves by hand: `advance` moves both clocks, `stepWall` the wall clock alone. */
export function fakeClock(start = Date.UTC(2024, 0, 1)) {
  let now = start;
  let wallOffset = 0;
  return {
    now: () => now,
    wall: () => now + wallOffset,
    advance(ms: number) {
      now += ms;
    },
    stepWall(ms: number) {
      wallOffset += ms;
    },
  };
}

/** Records published messages; fails on demand the way the real publisher fails. */
export class FakePublisher implements Publisher {
  readonly published: Array<{ readonly message: QueueMessage; readonly receivedAt: Date }> = [];
  ready = true;
  readonly unconfirmed = 0;
  #failure: ((id: string) => QueueUnavailable | PublishOutcomeUnknown) | undefined;
  /** Publishes after this many more succeed fail (with #failure), as a broker that fills up would. */
  #failAfter = Infinity;

  /**
   * Every later publish fails until failWith(undefined): `refused` as when nothing reached the
   * broker or it nacked or returned the event, `unknown` as when no confirm came.
   */
  failWith(kind: 'refused' | 'unknown' | undefined, reason = 'the broker refused the event', afterSuccesses = 0): void {
    this.#failAfter = kind === undefined ? Infinity : afterSuccesses;
    if (kind === undefined) this.#failure = undefined;
    else this.#failure = (id) => (kind === 'refused' ? new QueueUnavailable('nacked', reason, id) : new PublishOutcomeUnknown('confirm-timeout', reason, id));
  }

  isReady(): boolean {
    return this.ready;
  }

  async publish(message: QueueMessage, receivedAt: Date): Promise<void> {
    if (!this.ready) throw new QueueUnavailable('not-connected', 'the broker connection is down', message.id);
    if (this.#failure !== undefined && this.#failAfter-- <= 0) throw this.#failure(message.id);
    this.published.push({ message, receivedAt });
  }

  /** As ConfirmPublisher.publishAll: each message on its own; any failure fails the batch with every id. */
  async publishAll(messages: readonly QueueMessage[], receivedAt: Date): Promise<void> {
    const outcomes = await Promise.allSettled(messages.map((message) => this.publish(message, receivedAt)));
    const failed = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failed !== undefined) throw batchFailure(failed.reason as QueueUnavailable, messages.map((message) => message.id));
  }
}

interface Sent {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: Options.Publish;
  readonly callback: (err: unknown) => void;
}

/** A confirm channel whose broker answers are played by the test. */
export class FakeChannel extends EventEmitter implements PublishChannel {
  readonly sent: Sent[] = [];
  /** What publish returns: false plays a full write buffer. */
  writable = true;
  throwOnSend: Error | undefined;

  publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish, callback: (err: unknown) => void): boolean {
    if (this.throwOnSend !== undefined) throw this.throwOnSend;
    this.sent.push({ exchange, routingKey, content, options, callback });
    return this.writable;
  }

  ack(index = this.sent.length - 1): void {
    this.sent[index]!.callback(null);
  }

  nack(index = this.sent.length - 1): void {
    this.sent[index]!.callback(new Error('message nacked'));
  }

  /** basic.return of a sent message, as RabbitMQ sends it for an unroutable mandatory publish. */
  returnMessage(index = this.sent.length - 1): void {
    const { content, options, exchange, routingKey } = this.sent[index]!;
    const message = { content, fields: { exchange, routingKey }, properties: { messageId: options.messageId } };
    this.emit('return', message as unknown as Message);
  }

  /** amqplib fails every unconfirmed callback, then emits 'close'. */
  close(): void {
    for (const { callback } of this.sent) callback(new Error('channel closed'));
    this.emit('close');
  }
}

export interface TestApp<P extends Publisher> {
  readonly server: Server;
  readonly url: string;
  readonly publisher: P;
  readonly clock: ReturnType<typeof fakeClock>;
  readonly logs: readonly LogLine[];
  /** Resolves with the first log line, past or future, that matches. */
  logged(match: (line: LogLine) => boolean): Promise<LogLine>;
  readonly limiter: SlidingLogLimiter;
  readonly metrics: ApiMetrics;
  /** Never started: a test samples it by hand after moving `clock`. */
  readonly shedder: LoadShedder;
}

/**
 * Builds the app (with a FakePublisher unless given one), listens on 127.0.0.1:0, closes after the test.
 * With `sharedStore` (a stand-in for Redis) the rate limit is shared through it as with
 * RATE_LIMIT_STORE=redis, and `limiter` is its in-process fallback.
 */
export async function startApp<P extends Publisher = FakePublisher>(
  t: TestContext,
  options: { readonly env?: Record<string, string>; readonly publisher?: P; readonly sharedStore?: SharedStore; readonly audience?: Audience } = {},
): Promise<TestApp<P>> {
  const config = loadConfig({ RABBITMQ_URL: 'amqp://broker.invalid', ...options.env });
  const publisher = options.publisher ?? (new FakePublisher() as Publisher as P);
  const clock = fakeClock();
  const logs: LogLine[] = [];
  const waiting = new Set<(line: LogLine) => void>();
  const write = (text: string) => {
    const line = JSON.parse(text) as LogLine;
    logs.push(line);
    for (const notify of waiting) notify(line);
  };
  const logged = (match: (line: LogLine) => boolean) =>
    new Promise<LogLine>((resolve) => {
      const found = logs.find(match);
      if (found !== undefined) return resolve(found);
      const notify = (line: LogLine) => {
        if (!match(line)) return;
        waiting.delete(notify);
        resolve(line);
      };
      waiting.add(notify);
    });
  const logger = createLogger({}, { level: 'debug', write, now: clock.wall });
  const limiter = new SlidingLogLimiter({ ...config.rateLimit, now: clock.now });
  const metrics = createApiMetrics();
  const { sharedStore } = options;
  const shared = sharedStore && new RedisLimiter({ store: sharedStore, fallback: limiter, timeoutMs: DEFAULTS.RATE_LIMIT_REDIS_TIMEOUT_MS, clock, logger, metrics });
  const healthInfo = shared && { redis: () => shared.storeUp };
  const shedder = new LoadShedder({ maxInFlight: config.maxInFlightRequests, maxEventLoopDelayMs: config.maxEventLoopDelayMs, now: clock.now });
  const server = createApp({ config, publisher, limiter: shared ?? limiter, healthInfo, clock, logger, metrics, shedder }, options.audience);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    return closed;
  });
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, publisher, clock, logs, logged, limiter, metrics, shedder };
}

export const VALID_EVENT = {
  userId: 'a1b2c3d4-e5f6-7890-1234-567890abcdef',
  eventType: 'user_login',
  timestamp: '2023-10-27T10:00:00Z',
  payload: { ipAddress: '192.168.1.1', device: 'desktop' },
} as const;

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}
