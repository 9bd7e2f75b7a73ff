// Shared by the bench scripts: start a service process on a runtime, run wrk, print a table.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import amqp, { type ConfirmChannel } from 'amqplib';
import { assertTopology, queueArguments } from '@event-tracker/common/broker/topology.ts';
import { loadConfig } from '../api/src/config.ts';

export { scriptCommand, startCommand, startReady, startService, stopService, type Runtime, type RunningService } from '../tests/support/processes.ts';

const run = promisify(execFile);

export interface WrkResult {
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly errors: number;
}

/** `bodyFile`: a file whose bytes each request POSTs instead of post.lua's one event (a batch, say). */
export async function wrk(url: string, connections: number, seconds: number, bodyFile?: string): Promise<WrkResult> {
  const threads = Math.min(2, connections);
  const { stdout } = await run('wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '-s', 'bench/post.lua', url], {
    maxBuffer: 1 << 20,
    env: bodyFile === undefined ? process.env : { ...process.env, WRK_BODY_FILE: bodyFile },
  });
  const line = stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (!line) throw new Error(`wrk printed no summary:\n${stdout}`);
  const r = JSON.parse(line.slice('WRK_JSON '.length));
  return {
    requests: r.requests,
    requestsPerSecond: r.requests / (r.duration_us / 1e6),
    p50Ms: r.p50_us / 1000,
    p99Ms: r.p99_us / 1000,
    maxMs: r.max_us / 1000,
    errors: r.non2xx + r.socket_errors,
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function table(title: string, rows: readonly Record<string, string | number>[]): void {
  const columns = Object.keys(rows[0] ?? {});
  const cell = (value: string | number) => (typeof value === 'number' ? formatNumber(value) : value);
  console.log(`\n### ${title}\n`);
  console.log(`| ${columns.join(' | ')} |`);
  console.log(`|${columns.map(() => '---').join('|')}|`);
  for (const row of rows) console.log(`| ${columns.map((c) => cell(row[c]!)).join(' | ')} |`);
}

function formatNumber(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(2);
}

/** Empties (`purge`) or removes (`delete`) queues; purging keeps a running publisher's queue routable. */
export async function clearQueues(url: string, how: 'purge' | 'delete', ...queues: string[]): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    for (const queue of queues) {
      if (how === 'purge') await channel.purgeQueue(queue);
      else await channel.deleteQueue(queue);
    }
  } finally {
    await connection.close();
  }
}

/** Removes exchanges a bench's servers declared (the API and declareApiQueue: EVENTS_EXCHANGE). */
export async function deleteExchanges(url: string, ...exchanges: string[]): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    for (const exchange of exchanges) await channel.deleteExchange(exchange);
  } finally {
    await connection.close();
  }
}

export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required (see BENCHMARKS.md)`);
  return value;
}

/**
 * Declares `queueName` and its dead-letter queue as the API does with default settings, and returns
 * the main queue's arguments as JSON, for the servers that are not the API (QUEUE_ARGUMENTS): every
 * server in a comparison then writes to the same kind of queue.
 */
export async function declareApiQueue(url: string, queueName: string): Promise<string> {
  const { topology } = loadConfig({ RABBITMQ_URL: url, QUEUE_NAME: queueName, EVENTS_EXCHANGE: queueName });
  const connection = await amqp.connect(url);
  try {
    await assertTopology(await connection.createChannel(), topology);
  } finally {
    await connection.close();
  }
  return JSON.stringify(queueArguments(topology, queueName));
}

/** User plus system CPU time a process has used so far, in microseconds (Linux /proc). */
export function cpuMicros(pid: number): number {
  // Fields 14 and 15 of /proc/<pid>/stat, counted after the parenthesised command name.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND) * 1e6;
}

/**
 * CPU time so far, in seconds by pid, of every process whose command name (/proc/<pid>/comm) is one
 * of `names`, such as the broker (`beam.smp`) or the database (`mongod`, or `ferretdb` and `postgres`).
 */
export function cpuSecondsOf(names: readonly string[]): Map<number, number> {
  const seconds = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (names.includes(readFileSync(`/proc/${entry}/comm`, 'utf8').trim())) seconds.set(Number(entry), cpuMicros(Number(entry)) / 1e6);
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return seconds;
}

/** CPU seconds used between two readings of cpuSecondsOf; a process that ended in between is not counted. */
export function cpuSecondsBetween(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>): number {
  let seconds = 0;
  for (const [pid, total] of after) seconds += total - (before.get(pid) ?? 0);
  return seconds;
}

/** USER_HZ, which Linux fixes at 100 for /proc on every architecture it runs on here. */
const CLOCK_TICKS_PER_SECOND = 100;

const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;

/**
 * Publishes `body` to `queue` for `seconds`, `window` unconfirmed at most (persistent, with
 * confirms, as the API publishes): confirmed messages per second and confirm latency.
 */
export async function publishFor(channel: ConfirmChannel, queue: string, body: Buffer, seconds: number, window: number): Promise<Record<string, number>> {
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  const publisher = async () => {
    while (performance.now() < deadline) {
      const at = performance.now();
      await new Promise<void>((resolve, reject) => {
        channel.sendToQueue(queue, body, { persistent: true, contentType: 'application/json', messageId: randomUUID() }, (err) => (err ? reject(err) : resolve()));
      });
      latencies.push(performance.now() - at);
    }
  };
  await Promise.all(Array.from({ length: window }, publisher));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { 'confirmed msg/s': latencies.length / elapsed, 'confirm p50 ms': quantile(latencies, 0.5), 'confirm p99 ms': quantile(latencies, 0.99) };
}
