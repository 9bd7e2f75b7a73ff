// Where a server's CPU goes per request, from a V8 CPU profile (`node --cpu-prof`, `bun --cpu-prof`):
// each sample's self time by kind of code, divided by the requests the run answered. BENCHMARKS.md
// reads missed targets off this, e.g. the API against Fastify under the same wrk load.
// bench/profile.ts takes such a profile and prints this table.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string };
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  /** Microseconds before each sample. */
  readonly timeDeltas: readonly number[];
}

/** The kind of code a frame is: what the table's rows are. */
function kindOf({ functionName, url }: ProfileNode['callFrame']): string {
  if (['(idle)', '(program)', '(garbage collector)'].includes(functionName)) return functionName;
  if (/^(writeUtf8String|writeBuffer|writev|writeHeadAndEnd|writeBuffered)$/.test(functionName)) return 'socket writes (kernel)';
  if (url.includes('/amqplib/')) return 'amqplib';
  if (/\/node_modules\/(mongodb|bson)\//.test(url)) return 'mongodb driver and bson';
  if (/\/(api|consumer|common)\/src\//.test(url)) return 'event-tracker code';
  if (url.includes('/bench/')) return 'bench server and its framework';
  if (url.startsWith('node:') || url.startsWith('internal:')) return 'runtime library (http, streams, timers, events)';
  return 'native and other';
}

/** The table: µs per request (or per event: `requests` is the divisor) by kind of code, busiest first, then the busy total. */
export function perRequestTable(file: string, requests: number, unit = 'request'): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const micros = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const kind = kindOf(nodes.get(id)!.callFrame);
    micros.set(kind, (micros.get(kind) ?? 0) + profile.timeDeltas[i]!);
  });
  const busy = [...micros].filter(([kind]) => kind !== '(idle)').reduce((sum, [, value]) => sum + value, 0);
  const rows = [...micros].sort((a, b) => b[1] - a[1]).map(([kind, value]) => `| ${kind} | ${(value / requests).toFixed(1)} |`);
  return [`| kind of code | µs per ${unit} |`, '|---|---:|', ...rows, `| **busy (all but idle)** | **${(busy / requests).toFixed(1)}** |`].join('\n');
}
