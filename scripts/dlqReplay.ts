// `npm run dlq:replay`: moves dead letters from each stored queue's `.dead` back to that queue
// (<QUEUE_NAME>, or <QUEUE_NAME>.0 … with partitions), once the cause of their rejection is fixed.
// Each copy is published with a confirm, and its dead letter is acked only after that confirm, so a
// failure at any point loses nothing: at worst one message is in both queues, and the consumer
// stores it once (its event id is the document's _id).
// Usage: npm run dlq:replay -- [--reason TEXT | --reason-prefix TEXT] [--max N]
import { parseArgs } from 'node:util';
import type { ChannelModel, ConfirmChannel, GetMessage } from 'amqplib';
import { closeWithin, connectAny } from '@event-tracker/common/broker/connect.ts';
import { copyProperties, REJECTION_REASON_HEADER } from '@event-tracker/common/broker/deadLetters.ts';
import type { BrokerNode } from '@event-tracker/common/broker/nodes.ts';
import { deadLetterQueueName, streamQueues } from '@event-tracker/common/broker/topology.ts';
import { ConfigError, EnvReader } from '@event-tracker/common/env.ts';
import { readSharedSettings } from '@event-tracker/common/sharedSettings.ts';
// The queues it empties are the consumer's, so it reads the environment with the consumer's defaults.
import { DEFAULTS } from '../consumer/src/config.ts';

/** Longest wait for one copy's confirm; a broker blocked by a resource alarm answers none. */
const CONFIRM_TIMEOUT_MS = 30_000;

type ReasonFilter = { readonly match: 'exact' | 'prefix'; readonly text: string };

interface ReplayOptions {
  readonly nodes: readonly BrokerNode[];
  readonly heartbeatSeconds: number;
  /** Each stored queue, with its dead-letter queue. */
  readonly pairs: ReadonlyArray<{ readonly queue: string; readonly deadQueue: string }>;
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
  const { brokerNodes, topology, heartbeatSeconds } = readSharedSettings(read);
  const flags = readFlags(read, argv);
  if (flags.reason !== undefined && flags['reason-prefix'] !== undefined) read.fail('argv', 'give --reason or --reason-prefix, not both');
  if (flags.reason === '' || flags['reason-prefix'] === '') read.fail('argv', '--reason and --reason-prefix need a non-empty text');
  const max = flags.max === undefined ? Infinity : /^\d+$/.test(flags.max) ? Number(flags.max) : NaN;
  if (!(max >= 1)) read.fail('argv', `--max must be a whole number of at least 1 (got "${flags.max}")`);
  const filter: ReasonFilter | undefined =
    flags.reason !== undefined ? { match: 'exact', text: flags.reason } : flags['reason-prefix'] !== undefined ? { match: 'prefix', text: flags['reason-prefix'] } : undefined;
  return read.done({
    nodes: brokerNodes,
    heartbeatSeconds,
    pairs: streamQueues(topology).map((queue) => ({ queue, deadQueue: deadLetterQueueName(queue) })),
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

type PublishOutcome = { readonly outcome: 'confirmed' } | { readonly outcome: 'refused' | 'returned' | 'unknown'; readonly why: string };

/** Publishes one copy and waits for its confirm; one at a time, so a basic.return is this copy's. */
async function publishCopy(channel: ConfirmChannel, queue: string, message: GetMessage, backToDead: boolean, returned: { count: number }): Promise<PublishOutcome> {
  const returnsBefore = returned.count;
  let timer: NodeJS.Timeout | undefined;
  const confirm = new Promise<PublishOutcome>((resolve) => {
    try {
      channel.sendToQueue(queue, message.content, copyProperties(message, backToDead), (err) => {
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
  readonly queue: string;
  readonly deadQueue: string;
  /** Ready messages of the dead-letter queue when the run started: the most it examines. */
  readonly atStart: number;
  readonly moved: number;
  /** Examined, did not match the filter, and put back at the dead-letter queue's tail. */
  readonly unmatched: number;
  readonly end: { readonly reason: 'examined-all' | 'max' } | { readonly reason: 'failed'; readonly why: string };
}

/**
 * Takes the messages a dead-letter queue held at the start (basic.get, one at a time): a match is
 * copied to its queue, the others back to the dead-letter queue's tail, and each is acked once its
 * copy is confirmed. Putting back by copy, not by nack-requeue, keeps its delivery count from
 * rising with every run (a quorum queue drops a message past its delivery limit). Messages
 * dead-lettered during the run, and the copies put back, come after the ones examined, so a
 * steady stream of rejections cannot keep it running.
 */
async function replay(channel: ConfirmChannel, pair: ReplayOptions['pairs'][number], options: ReplayOptions, atStart: number, budget: number): Promise<ReplayResult> {
  const returned = { count: 0 };
  channel.on('return', () => returned.count++);
  let moved = 0;
  let unmatched = 0;
  let end: ReplayResult['end'] = { reason: 'examined-all' };
  try {
    for (let examined = 0; examined < atStart; examined++) {
      if (moved >= budget) {
        end = { reason: 'max' };
        break;
      }
      const message = await channel.get(pair.deadQueue, { noAck: false });
      if (message === false) break;
      const match = matches(options.filter, message);
      const target = match ? pair.queue : pair.deadQueue;
      const published = await publishCopy(channel, target, message, !match, returned);
      if (published.outcome !== 'confirmed') {
        // Back where it was. 'unknown' means the copy may be in the target too: the consumer
        // stores an event once, and a second dead letter is replayed as the same event.
        channel.nack(message, false, true);
        end = { reason: 'failed', why: published.outcome === 'unknown' ? `${published.why}; the copy may be in ${target} as well` : published.why };
        break;
      }
      channel.ack(message);
      if (match) moved++;
      else unmatched++;
    }
  } catch (err) {
    // On a channel that is gone the broker has requeued every unacked message.
    end = { reason: 'failed', why: (err as Error).message };
  }
  return { ...pair, atStart, moved, unmatched, end };
}

function describeFilter(filter: ReasonFilter): string {
  return `${filter.match === 'exact' ? '--reason' : '--reason-prefix'} ${JSON.stringify(filter.text)}`;
}

/** The line saying what was done with one queue, e.g. `moved 2 of 5 from q.dead to q; left 3 in q.dead (1 not matching --reason "x"); stopped at --max 2`. */
function summary(options: ReplayOptions, { queue, deadQueue, atStart, moved, unmatched, end }: ReplayResult): string {
  const left = `left ${atStart - moved} in ${deadQueue}${options.filter === undefined ? '' : ` (${unmatched} not matching ${describeFilter(options.filter)})`}`;
  const parts = [`moved ${moved} of ${atStart} from ${deadQueue} to ${queue}`, left];
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
    ({ connection } = await connectAny(options.nodes, { heartbeatSeconds: options.heartbeatSeconds, connectionName: 'event-tracker-dlq-replay' }));
  } catch (err) {
    // The URLs carry credentials, so none is printed.
    console.error(`dlq:replay: could not connect to RabbitMQ: ${(err as Error).message}`);
    return 1;
  }
  connection.on('error', () => {}); // reported through the channel and the close below
  connection.on('blocked', (reason: string) => console.error(`dlq:replay: the broker blocks publishing (${reason}); copies wait for it`));
  try {
    let budget = options.max;
    for (const pair of options.pairs) {
      const atStart = await readyMessages(connection, pair.deadQueue);
      await readyMessages(connection, pair.queue);
      const channel = await connection.createConfirmChannel();
      channel.on('error', () => {}); // a closed channel fails the get or the confirm in hand
      const result = await replay(channel, pair, options, atStart, budget);
      await closeWithin(channel, () => channel.close());
      budget -= result.moved;
      const line = summary(options, result);
      if (result.end.reason === 'failed') {
        console.error(`dlq:replay: ${line}`);
        return 1;
      }
      console.log(line);
      if (result.end.reason === 'max') break;
    }
    return 0;
  } catch (err) {
    console.error(`dlq:replay: ${(err as Error).message}; nothing was moved`);
    return 1;
  } finally {
    await closeWithin(connection, () => connection.close());
  }
}

process.exitCode = await main(process.env, process.argv.slice(2));
