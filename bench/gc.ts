// The young-generation garbage collector under the side-by-side load: each server runs on Node 26
// with --trace-gc, takes `wrk -c50` for BENCH_SECONDS, and the scavenges of that time are counted,
// with their pauses and the heap each left behind. A heap that grows from one scavenge to the next
// is promoting objects that die soon after (BENCHMARKS.md section 0, "Third pass").
// Usage: RABBITMQ_URL=... node --import tsx bench/gc.ts [api|fastify-limited|baseline ...]   (BENCH_SECONDS)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clearQueues, declareApiQueue, deleteExchanges, median, requireEnv, wrk } from './support.ts';
import { root, waitFor } from '../tests/support/processes.ts';

const rabbitmqUrl = requireEnv('RABBITMQ_URL');
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const scripts: Record<string, string> = { api: 'api/src/server.ts', 'fastify-limited': 'bench/peers/fastifyRateLimit.mjs', baseline: 'bench/baseline.ts' };
const servers = process.argv.length > 2 ? process.argv.slice(2) : ['api', 'fastify-limited', 'baseline'];
const node26 = join(root, 'tests/node26/node_modules/.bin/node');
const PORT = 3999;
/** `[pid:isolate]  123 ms: Scavenge 55.5 (89.0) -> 32.8 (89.0) MB, pooled: 9.0 MB, 8.81 / 0.01 ms ...` */
const SCAVENGE = /Scavenge [\d.]+ \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/g;

const dir = mkdtempSync(join(tmpdir(), 'bench-gc-'));
try {
  for (const server of servers) {
    if (scripts[server] === undefined) throw new Error(`server must be one of ${Object.keys(scripts).join(', ')}`);
    const queue = `bench_gc_${process.pid}_${server.replace(/\W/g, '_')}`;
    const log = join(dir, `${server}.log`);
    const output = openSync(log, 'w');
    const child = spawn(node26, ['--trace-gc', scripts[server]!], {
      cwd: root,
      stdio: ['ignore', output, output],
      env: { PATH: process.env.PATH, RABBITMQ_URL: rabbitmqUrl, QUEUE_NAME: queue, EVENTS_EXCHANGE: queue, QUEUE_ARGUMENTS: await declareApiQueue(rabbitmqUrl, queue), API_HOST: '127.0.0.1', API_PORT: String(PORT), RATE_LIMIT_MAX_REQUESTS: '1000000000', MAX_CONNECTIONS_PER_CLIENT: '1000000' },
    });
    try {
      await waitFor(`${server} to answer`, async () => (await fetch(`http://127.0.0.1:${PORT}/api/v1/activities`, { method: 'POST', body: '{}' }).catch(() => undefined)) !== undefined);
      const before = [...readFileSync(log, 'utf8').matchAll(SCAVENGE)].length;
      const result = await wrk(`http://127.0.0.1:${PORT}/api/v1/activities`, 50, seconds);
      const during = [...readFileSync(log, 'utf8').matchAll(SCAVENGE)].slice(before);
      const heaps = during.map((match) => Number(match[1]));
      const pauses = during.map((match) => Number(match[2]));
      const growth = heaps.length > 1 ? (heaps.at(-1)! - heaps[0]!) / (heaps.length - 1) : 0;
      console.log(`${server}: ${result.requests} requests, ${during.length} scavenges (${Math.round(result.requests / during.length)} requests each), pause median ${median(pauses).toFixed(2)} ms, max ${Math.max(...pauses).toFixed(2)} ms; heap after each ${heaps[0]} -> ${heaps.at(-1)} MB (${growth >= 0 ? '+' : ''}${growth.toFixed(2)} MB per scavenge)`);
    } finally {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
      await clearQueues(rabbitmqUrl, 'delete', queue, `${queue}.dead`);
      await deleteExchanges(rabbitmqUrl, queue);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
