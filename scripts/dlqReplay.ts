// `npm run dlq:replay`: moves dead letters from <QUEUE_NAME>.dead back to <QUEUE_NAME>, once the
// cause of their rejection is fixed. Each copy is published with a confirm, and its dead letter is
// acked only after that confirm, so a failure at any point loses nothing: at worst one message is
// in both queues, and the consumer stores it once (its event id is the document's _id).
// Usage: npm run dlq:replay -- [--reason TEXT | --reason-prefix TEXT] [--max N]
import { parseArgs } from 'node:util';
import amqp, { type ChannelModel, type ConfirmChannel, type GetMessage, type Options } from 'amqplib';
import { CONNECT_TIMEOUT_MS, closeWithin, withHeartbeat } from '@event-tracker/common/amqp.ts';
import { ConfigError, EnvReader, readBrokerSettings } from '@event-tracker/common/env.ts';
import { deadLetterQueueName } from '@event-tracker/common/topology.ts';
// The queue it empties is the consumer's, so it reads the environment with the consumer's defaults.
import { DEFAULTS } from '../consumer/src/config.ts';
import { REJECTED_AT_HEADER, REJECTION_REASON_HEADER } from '../consumer/src/services/settler.ts';

/** Longest wait for one copy's confirm; a broker blocked by a resource alarm answers none. */
const CONFIRM_TIMEOUT_MS = 30_000;

/**
 * Headers that describe the message's life in the dead-letter queue, not the event: the consumer's
 * reason and time, and the broker's x-death family and delivery count. The copy starts afresh, and a
 * copy carrying x-death could be taken by the broker for a dead-letter cycle and dropped.
 */
const DEAD_LETTER_HEADERS = new Set([
  REJECTION_REASON_HEADER,
  REJECTED_AT_HEADER,
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
  'x-delivery-count',
]);

type ReasonFilter = { readonly match: 'exact' | 'prefix'; readonly text: string };

interface ReplayOptions {
  readonly url: string;
  readonly queue: string;
  readonly deadQueue: string;
  /** Undefined: every dead letter moves. */
  readonly filter: ReasonFilter | undefined;
  /** Messages moved at most; Infinity when --max is not given. */
  readonly max: number;
}

const FLAGS = { reason: { type: 'string' }, 'reason-prefix': { type: 'string' }, max: { type: 'string' } } as const;
type Flags = { -readonly [K in keyof typeof FLAGS]?: string };

/** The flags, each problem reported to `read`: not strict, so one run names every bad flag at once. */
function readFlags(read: EnvReader, argv: readonly string[]): Flags {
  const { values, positionals } = parseArgs({ args: [...argv], options: FLAGS, strict: false, allowPositionals: true });
  const flags: Flags = {};
  for (const [name, value] of Object.entries(values)) {
    if (!Object.hasOwn(FLAGS, name)) read.fail('argv', `unknown option --${name} (usage: [--reason TEXT | --reason-prefix TEXT] [--max N])`);
    else if (typeof value !== 'string') read.fail('argv', `--${name} needs a value`);
    else flags[name as keyof Flags] = value;
  }
  for (const positional of positionals) read.fail('argv', `unexpected argument "${positional}"`);
  return flags;
}

/** Reads the environment and the flags; throws one ConfigError naming every problem. */
function loadOptions(env: Readonly<Record<string, string | undefined>>, argv: readonly string[]): ReplayOptions {
  const read = new EnvReader(env, DEFAULTS);
  const { rabbitmqUrl, topology, heartbeatSeconds } = readBrokerSettings(read);
  const flags = readFlags(read, argv);
  if (flags.reason !== undefined && flags['reason-prefix'] !== undefined) read.fail('argv', 'give --reason or --reason-prefix, not both');
  if (flags.reason === '' || flags['reason-prefix'] === '') read.fail('argv', '--reason and --reason-prefix need a non-empty text');
  const max = flags.max === undefined ? Infinity : /^\d+$/.test(flags.max) ? Number(flags.max) : NaN;
  if (!(max >= 1)) read.fail('argv', `--max must be a whole number of at least 1 (got "${flags.max}")`);
  const filter: ReasonFilter | undefined =
    flags.reason !== undefined ? { match: 'exact', text: flags.reason } : flags['reason-prefix'] !== undefined ? { match: 'prefix', text: flags['reason-prefix'] } : undefined;
  return read.done({
    url: read.valid('RABBITMQ_URL') ? withHeartbeat(rabbitmqUrl, heartbeatSeconds) : '',
    queue: topology.queueName,
    deadQueue: deadLetterQueueName(topology.queueName),
    filter,
    max,
  });
}

function rejectionReason(message: GetMessage): string | undefined {
  const value: unknown = message.properties.headers?.[REJECTION_REASON_HEADER];
  if (typeof value === 'string') return value;
  return Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
}

function matches(filter: ReasonFilter | undefined, message: GetMessage): boolean {
  if (filter === undefined) return true;
  const reason = rejectionReason(message);
  if (reason === undefined) return false;
  return filter.match === 'exact' ? reason === filter.text : reason.startsWith(filter.text);
}

/**
 * The dead letter's properties, minus its dead-letter headers, `expiration` (the copy must not
 * expire) and `userId` (the broker checks it against this connection's user); always persistent.
 */
function copyProperties(message: GetMessage): Options.Publish {
  const { contentType, contentEncoding, priority, correlationId, replyTo, messageId, timestamp, type, appId, headers } = message.properties;
  const kept = { contentType, contentEncoding, priority, correlationId, replyTo, messageId, timestamp, type, appId };
  return {
    ...Object.fromEntries(Object.entries(kept).filter(([, value]) => value !== undefined)),
    headers: Object.fromEntries(Object.entries(headers ?? {}).filter(([name]) => !DEAD_LETTER_HEADERS.has(name))),
    persistent: true,
    // Unroutable (the queue was deleted meanwhile) comes back as basic.return, not as a silent confirm.
    mandatory: true,
  };
}

type PublishOutcome = { readonly outcome: 'confirmed' } | { readonly outcome: 'refused' | 'returned' | 'unknown'; readonly why: string };

/** Publishes one copy and waits for its confirm; one at a time, so a basic.return is this copy's. */
async function publishCopy(channel: ConfirmChannel, queue: string, message: GetMessage, returned: { count: number }): Promise<PublishOutcome> {
  const returnsBefore = returned.count;
  let timer: NodeJS.Timeout | undefined;
  const confirm = new Promise<PublishOutcome>((resolve) => {
    try {
      channel.sendToQueue(queue, message.content, copyProperties(message), (err) => {
        if (returned.count > returnsBefore) resolve({ outcome: 'returned', why: `the broker returned the copy: "${queue}" no longer exists` });
        else if (err) resolve({ outcome: err.message === 'channel closed' ? 'unknown' : 'refused', why: `the broker did not confirm the copy (${err.message})` });
        else resolve({ outcome: 'confirmed' });
      });
    } catch (err) {
      resolve({ outcome: 'unknown', why: `the copy could not be sent (${(err as Error).message})` });
    }
  });
  const deadline = new Promise<PublishOutcome>((resolve) => {
    timer = setTimeout(() => resolve({ outcome: 'unknown', why: `no confirm within ${CONFIRM_TIMEOUT_MS} ms` }), CONFIRM_TIMEOUT_MS);
  });
  try {
    return await Promise.race([confirm, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

interface ReplayResult {
  /** Ready messages of the dead-letter queue when the run started: the most it examines. */
  readonly atStart: number;
  readonly moved: number;
  /** Examined, did not match the filter, and returned to the dead-letter queue. */
  readonly unmatched: number;
  readonly end: { readonly reason: 'examined-all' | 'max' } | { readonly reason: 'failed'; readonly why: string };
}

/**
 * Takes the messages the dead-letter queue held at the start (basic.get, one at a time): a match is
 * copied and acked once the copy is confirmed; the others stay unacked until the end, so no get
 * returns one twice, then all go back with nack-requeue. Messages dead-lettered during the run are
 * left for the next one, so a steady stream of rejections cannot keep it running.
 */
async function replay(channel: ConfirmChannel, options: ReplayOptions, atStart: number): Promise<ReplayResult> {
  const returned = { count: 0 };
  channel.on('return', () => returned.count++);
  const unmatched: GetMessage[] = [];
  let failed: GetMessage | undefined;
  let moved = 0;
  let end: ReplayResult['end'] = { reason: 'examined-all' };
  try {
    for (let examined = 0; examined < atStart; examined++) {
      if (moved >= options.max) {
        end = { reason: 'max' };
        break;
      }
      const message = await channel.get(options.deadQueue, { noAck: false });
      if (message === false) break;
      if (!matches(options.filter, message)) {
        unmatched.push(message);
        continue;
      }
      const published = await publishCopy(channel, options.queue, message, returned);
      if (published.outcome !== 'confirmed') {
        // Back to the dead-letter queue. 'unknown' means the copy may be in the queue too: a later
        // run makes a second copy, which the consumer stores once.
        failed = message;
        end = { reason: 'failed', why: published.outcome === 'unknown' ? `${published.why}; the copy may be in ${options.queue} as well` : published.why };
        break;
      }
      channel.ack(message);
      moved++;
    }
  } catch (err) {
    end = { reason: 'failed', why: (err as Error).message };
  }
  // On a channel that is gone nack throws; the broker has requeued every unacked message then.
  try {
    for (const message of failed === undefined ? unmatched : [...unmatched, failed]) channel.nack(message, false, true);
  } catch {
    // requeued by the broker with the channel
  }
  return { atStart, moved, unmatched: unmatched.length, end };
}

function describeFilter(filter: ReasonFilter): string {
  return `${filter.match === 'exact' ? '--reason' : '--reason-prefix'} ${JSON.stringify(filter.text)}`;
}

/** The one line saying what was done, e.g. `moved 2 of 5 from q.dead to q; left 3 in q.dead (1 not matching --reason "x"); stopped at --max 2`. */
function summary(options: ReplayOptions, { atStart, moved, unmatched, end }: ReplayResult): string {
  const left = `left ${atStart - moved} in ${options.deadQueue}${options.filter === undefined ? '' : ` (${unmatched} not matching ${describeFilter(options.filter)})`}`;
  const parts = [`moved ${moved} of ${atStart} from ${options.deadQueue} to ${options.queue}`, left];
  if (end.reason === 'max') parts.push(`stopped at --max ${options.max}`);
  if (end.reason === 'failed') parts.push(`stopped: ${end.why}; nothing was lost`);
  return parts.join('; ');
}

/** Resolves once the queue is known to exist, with its ready messages; rejects with one clear line. */
async function readyMessages(connection: ChannelModel, queue: string): Promise<number> {
  // A passive declare of a missing queue closes its channel (404), so each check has its own.
  const channel = await connection.createChannel();
  channel.on('error', () => {});
  try {
    return (await channel.checkQueue(queue)).messageCount;
  } catch (err) {
    throw new Error(/NOT_FOUND/.test((err as Error).message) ? `queue "${queue}" does not exist (check QUEUE_NAME)` : (err as Error).message);
  } finally {
    await closeWithin(channel, () => channel.close());
  }
}

async function main(env: Readonly<Record<string, string | undefined>>, argv: readonly string[]): Promise<number> {
  let options: ReplayOptions;
  try {
    options = loadOptions(env, argv);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) console.error(`dlq:replay: ${problem}`);
    return 2;
  }
  let connection: ChannelModel;
  try {
    connection = await amqp.connect(options.url, { timeout: CONNECT_TIMEOUT_MS, clientProperties: { connection_name: 'event-tracker-dlq-replay' } });
  } catch (err) {
    // The URL carries credentials, so it is never printed.
    console.error(`dlq:replay: could not connect to RabbitMQ: ${(err as Error).message}`);
    return 1;
  }
  connection.on('error', () => {}); // reported through the channel and the close below
  connection.on('blocked', (reason: string) => console.error(`dlq:replay: the broker blocks publishing (${reason}); copies wait for it`));
  try {
    const atStart = await readyMessages(connection, options.deadQueue);
    await readyMessages(connection, options.queue);
    const channel = await connection.createConfirmChannel();
    channel.on('error', () => {}); // a closed channel fails the get or the confirm in hand
    const result = await replay(channel, options, atStart);
    await closeWithin(channel, () => channel.close());
    const line = summary(options, result);
    if (result.end.reason === 'failed') {
      console.error(`dlq:replay: ${line}`);
      return 1;
    }
    console.log(line);
    return 0;
  } catch (err) {
    console.error(`dlq:replay: ${(err as Error).message}; nothing was moved`);
    return 1;
  } finally {
    await closeWithin(connection, () => connection.close());
  }
}

process.exitCode = await main(process.env, process.argv.slice(2));
