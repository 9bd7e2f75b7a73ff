// Fakes at the consumer's own boundaries (clock, store, channel), each able to fail on demand.
import type { Message } from 'amqplib';
import { MongoBulkWriteError, MongoNetworkError, type BulkWriteResult, type Db, type WriteConcernError, type WriteError } from 'mongodb';
import type { QueueMessage, StoredActivity } from '@event-tracker/shared';
import type { ActivityStore, InsertOutcome } from '../src/activityStore.ts';
import type { Clock } from '@event-tracker/common/clock.ts';
import { createLogger, type Logger } from '@event-tracker/common/logger.ts';
import { parseDelivery, type ParsedActivity } from '../src/services/activityProcessor.ts';
import type { AckChannel, Delivery } from '../src/services/settler.ts';
import { DUPLICATE, RETRY, STORED, rejection, type Verdict } from '../src/services/verdict.ts';

/** A clock that moves only when told to; `advance` runs the tasks that fall due, in order. */
export class FakeClock implements Clock {
  #now = 1_700_000_000_000;
  /** How far the wall clock has been stepped away from the monotonic one. */
  #wallOffset = 0;
  #tasks: { at: number; task: () => void }[] = [];

  now(): number {
    return this.#now;
  }

  wall(): number {
    return this.#now + this.#wallOffset;
  }

  /** Steps the wall clock alone, as NTP or an operator would; timers and windows must not notice. */
  stepWall(ms: number): void {
    this.#wallOffset += ms;
  }

  schedule(ms: number, task: () => void): () => void {
    const entry = { at: this.#now + ms, task };
    this.#tasks.push(entry);
    return () => {
      this.#tasks = this.#tasks.filter((other) => other !== entry);
    };
  }

  /** Milliseconds until the next scheduled task, if any. */
  get nextIn(): number | undefined {
    const next = Math.min(...this.#tasks.map((entry) => entry.at));
    return Number.isFinite(next) ? next - this.#now : undefined;
  }

  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      const due = this.#tasks.filter((entry) => entry.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#tasks = this.#tasks.filter((entry) => entry !== due);
      this.#now = due.at;
      due.task();
    }
    this.#now = target;
  }
}

/**
 * Lets every promise continuation queued so far run. The fakes settle through microtasks only, and
 * the microtask queue is drained before a macrotask (setImmediate) runs, so after this the code
 * under test is idle: waiting for the fake clock or for the test. A yield, not a sleep.
 */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * An in-memory `activities` collection with a unique _id, like the real one, and ids per source as
 * the real store keeps them (another source's id is stored as `<source>:<id>`). It can give each
 * verdict the real store gives: `down` fails whole batches (retry), `failOnce` fails documents
 * transiently (retry), `refuse` and `unencodable` reject documents for good.
 */
export class FakeStore implements Pick<ActivityStore, 'insertBatch' | 'ping'> {
  readonly docs = new Map<string, StoredActivity>();
  readonly calls: StoredActivity[][] = [];
  pings = 0;
  /** While true every insert fails as if the server were unreachable, and ping fails. */
  down = false;
  #failOnce = new Set<string>();
  readonly #refused = new Map<string, number>();
  readonly #unencodable = new Set<string>();
  #gate: Promise<void> | undefined;

  /** The next insert fails these ids with a transient write error (retry); the rest go through. */
  failOnce(...ids: string[]): void {
    for (const id of ids) this.#failOnce.add(id);
  }

  /** Every insert of these ids is refused by the server with `code` (rejected 'refused'). */
  refuse(code: number, ...ids: string[]): void {
    for (const id of ids) this.#refused.set(id, code);
  }

  /** The driver cannot encode these ids (rejected 'unencodable'); the rest are still stored. */
  unencodable(...ids: string[]): void {
    for (const id of ids) this.#unencodable.add(id);
  }

  /** Inserts wait until the returned function is called, as a slow write would. */
  hold(): () => void {
    let release: () => void = () => {};
    this.#gate = new Promise((resolve) => (release = resolve));
    return () => {
      this.#gate = undefined;
      release();
    };
  }

  async insertBatch(docs: readonly StoredActivity[]): Promise<InsertOutcome> {
    this.calls.push([...docs]);
    await this.#gate;
    if (this.down) return { verdicts: docs.map(() => RETRY), error: new Error('connect ECONNREFUSED') };
    const failing = this.#failOnce;
    this.#failOnce = new Set();
    let failed = false;
    const crossSource: string[] = [];
    const verdicts = docs.map((doc): Verdict => {
      if (this.#unencodable.has(doc._id)) return rejection('unencodable', 'The driver cannot encode the document: fake');
      const refusal = this.#refused.get(doc._id);
      if (refusal !== undefined) {
        failed = true;
        return rejection('refused', `The database refused the document (code ${refusal}): fake`);
      }
      if (failing.has(doc._id)) {
        failed = true;
        return RETRY;
      }
      const holder = this.docs.get(doc._id);
      if (holder === undefined) {
        this.docs.set(doc._id, doc);
        return STORED;
      }
      const apart = `${doc.source}:${doc.id}`;
      if (doc.source === undefined || holder.source === doc.source || this.docs.has(apart)) return DUPLICATE;
      this.docs.set(apart, { ...doc, _id: apart });
      crossSource.push(apart);
      return STORED;
    });
    return { verdicts, ...(crossSource.length > 0 ? { crossSource } : {}), ...(failed ? { error: new Error('write error') } : {}) };
  }

  async ping(): Promise<boolean> {
    this.pings += 1;
    return !this.down;
  }
}

// WriteError, WriteConcernError and BulkWriteResult are declared in the driver's types but not
// exported at run time, so the fakes build objects of their shape (activityStore.test.ts compares
// them with the real driver's).
export const writeError = (index: number, code: number, errmsg = `E${code}`) => ({ index, code, errmsg }) as WriteError;

/** The error insertMany throws for an unordered batch, built the way the driver builds it. */
export function bulkError(insertedCount: number, writeErrors: WriteError[], writeConcernError?: WriteConcernError): MongoBulkWriteError {
  const result = { insertedCount, getWriteConcernError: () => writeConcernError } as unknown as BulkWriteResult;
  return new MongoBulkWriteError({ message: 'bulk write failed', code: writeErrors[0]?.code ?? 0, writeErrors }, result);
}

/**
 * The `activities` collection as far as the store uses it, behind a fake `Db`: a unique `_id`, and
 * insertMany failing as the driver's unordered one does (the rest inserted, one code-11000 write
 * error per taken `_id`, by index). `failFind` makes the next find fail with a network error.
 */
export class FakeCollection {
  readonly docs = new Map<string, StoredActivity>();
  failFind = false;

  async insertMany(docs: readonly StoredActivity[]): Promise<{ insertedCount: number }> {
    const errors: WriteError[] = [];
    docs.forEach((doc, index) => {
      if (this.docs.has(doc._id)) errors.push(writeError(index, 11000, `E11000 duplicate key error collection: activities index: _id_ dup key: { _id: "${doc._id}" }`));
      else this.docs.set(doc._id, doc);
    });
    if (errors.length > 0) throw bulkError(docs.length - errors.length, errors);
    return { insertedCount: docs.length };
  }

  find(filter: { _id: { $in: readonly string[] } }): { toArray(): Promise<StoredActivity[]> } {
    const failing = this.failFind;
    this.failFind = false;
    return {
      toArray: async () => {
        if (failing) throw new MongoNetworkError('connection reset');
        return filter._id.$in.flatMap((id) => this.docs.get(id) ?? []);
      },
    };
  }

  get db(): Db {
    return { collection: () => this } as unknown as Db;
  }
}

/**
 * A channel that records acks, nacks and dead-letter copies, and can be closed as the broker would
 * close it. Dead-letter copies can be refused (`failDeadLetters`) or held unconfirmed (`holdConfirms`).
 * A call on a closed channel is recorded in `closedCalls`; ack and nack then throw, as amqplib does,
 * and deadLetter resolves false, as the broker session's does.
 */
export class FakeChannel implements AckChannel {
  open = true;
  readonly acked: Message[] = [];
  readonly nacked: { message: Message; requeue: boolean | undefined }[] = [];
  readonly deadLettered: { message: Message; headers: Readonly<Record<string, string>> }[] = [];
  /** Calls made after the channel closed: their delivery tags were void. */
  readonly closedCalls: ('ack' | 'nack' | 'deadLetter')[] = [];
  /** While true the broker does not confirm dead-letter copies: deadLetter resolves false. */
  failDeadLetters = false;
  #gate: Promise<void> | undefined;
  #nextTag = 1;

  ack(message: Message): void {
    this.#assertOpen('ack');
    this.acked.push(message);
  }

  nack(message: Message, _allUpTo?: boolean, requeue?: boolean): void {
    this.#assertOpen('nack');
    this.nacked.push({ message, requeue });
  }

  async deadLetter(message: Message, headers: Readonly<Record<string, string>>): Promise<boolean> {
    if (!this.open) {
      this.closedCalls.push('deadLetter');
      return false;
    }
    this.deadLettered.push({ message, headers: { ...headers } });
    const failing = this.failDeadLetters;
    await this.#gate;
    return !failing;
  }

  #assertOpen(call: 'ack' | 'nack'): void {
    if (this.open) return;
    this.closedCalls.push(call);
    throw new Error('Channel closed');
  }

  /** Dead-letter confirms wait until the returned function is called, as a slow broker would. */
  holdConfirms(): () => void {
    let release: () => void = () => {};
    this.#gate = new Promise((resolve) => (release = resolve));
    return () => {
      this.#gate = undefined;
      release();
    };
  }

  /** A delivery of `body` (JSON-encoded unless a string or Buffer) on this channel. */
  deliver(body: unknown, properties: { messageId?: unknown; headers?: Record<string, unknown> } = {}): Delivery {
    const content = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const fields = { deliveryTag: this.#nextTag++, redelivered: false, exchange: '', routingKey: 'user_activities' };
    const message = { content, fields, properties: { headers: {}, ...properties } } as unknown as Message;
    return { message, channel: this };
  }

  get ackedIds(): unknown[] {
    return this.acked.map((message) => message.properties.messageId);
  }

  get deadLetteredIds(): unknown[] {
    return this.deadLettered.map(({ message }) => message.properties.messageId);
  }
}

/** A valid queue message; `id` doubles as the AMQP messageId in `deliverEvent`. */
export function event(id: string, overrides: Partial<Record<keyof QueueMessage, unknown>> = {}): QueueMessage {
  return {
    id,
    userId: 'user-1',
    eventType: 'page_view',
    timestamp: '2023-10-27T10:00:00Z',
    payload: { page: '/home' },
    ...overrides,
  } as QueueMessage;
}

export function deliverEvent(channel: FakeChannel, id: string): Delivery {
  return channel.deliver(event(id, { receivedAt: '2023-10-27T10:00:01.000Z' }), { messageId: id });
}

/** The activity a valid delivery parses to, as the consumer's onDelivery hands it to the writer. */
export function activityOf(delivery: Delivery): ParsedActivity {
  const parsed = parseDelivery(delivery.message);
  if (parsed.verdict !== 'activity') throw new Error(`test delivery rejected: ${parsed.reason}`);
  return parsed.activity;
}

/** A logger that keeps its lines, parsed, for assertions. */
export function memoryLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({}, { level: 'debug', write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}
