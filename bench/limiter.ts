// Rate limiter cost, in process: checks/s for one hot key and for 100k and 1M distinct keys,
// memory per tracked key with 1 entry and a full log (heap plus typed-array backing stores, each
// counted once), and the time of a sweep over 1M expired keys, whole and per chunk.
// Usage: node --expose-gc --import tsx bench/limiter.ts   or   bun bench/limiter.ts
import { SlidingLogLimiter } from '../api/src/rateLimit/slidingLog.ts';
import { table } from './support.ts';

const runtime = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void; version: string } };
const collect = runtime.gc ?? (runtime.Bun ? () => runtime.Bun!.gc(true) : undefined);
if (!collect) throw new Error('run with node --expose-gc, or with bun');

const WINDOW_MS = 60_000;
const LIMIT = 50;
let clock = 0;
const limiterFor = (maxKeys = 2_000_000) => new SlidingLogLimiter({ maxRequests: LIMIT, windowMs: WINDOW_MS, maxKeys, now: () => clock });

function keys(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:${i >> 24}`);
}

function checksPerSecond(limiter: SlidingLogLimiter, pool: readonly string[], checks: number): number {
  const started = performance.now();
  for (let i = 0; i < checks; i++) {
    clock += 1; // one millisecond per check: the log slides, both the allow and the reject path run
    limiter.hit(pool[i % pool.length]!);
  }
  return checks / ((performance.now() - started) / 1000);
}

function memoryNow(): number {
  collect!();
  collect!();
  const usage = process.memoryUsage();
  // Bun's heapUsed already includes ArrayBuffer backing stores (JavaScriptCore's "extra memory"),
  // Node's does not: adding arrayBuffers on Bun would count every typed array twice.
  return runtime.Bun ? usage.heapUsed : usage.heapUsed + usage.arrayBuffers;
}

function bytesPerKey(count: number, hitsPerKey: number): number {
  const pool = keys(count);
  const before = memoryNow();
  const limiter = limiterFor();
  for (let h = 0; h < hitsPerKey; h++) for (const key of pool) limiter.hit(key);
  const after = memoryNow();
  if (limiter.size !== count) throw new Error('keys lost');
  return (after - before) / count;
}

const rows: Record<string, string | number>[] = [];
const hot = limiterFor();
rows.push({ measure: 'checks/s, one hot key', value: checksPerSecond(hot, ['203.0.113.7'], 5_000_000) });
for (const count of [100_000, 1_000_000]) {
  const pool = keys(count);
  const limiter = limiterFor();
  checksPerSecond(limiter, pool, count); // populate first: the steady state is what a busy server sees
  rows.push({ measure: `checks/s, ${count.toLocaleString('en-US')} distinct keys`, value: checksPerSecond(limiter, pool, 3_000_000) });
}
rows.push({ measure: 'bytes per key, 1 entry (1M keys)', value: bytesPerKey(1_000_000, 1) });
rows.push({ measure: `bytes per key, full ${LIMIT}-entry log (100k keys)`, value: bytesPerKey(100_000, LIMIT) });

const swept = limiterFor();
for (const key of keys(1_000_000)) swept.hit(key);
clock += WINDOW_MS + 1;
const chunks: number[] = [];
const sweepStarted = performance.now();
for (let done = false; !done; ) {
  const chunkStarted = performance.now();
  done = swept.sweep();
  chunks.push(performance.now() - chunkStarted);
}
chunks.sort((a, b) => a - b);
rows.push({ measure: 'sweep of 1M expired keys, ms (total)', value: performance.now() - sweepStarted });
rows.push({ measure: `sweep chunk (${chunks.length} chunks), ms: p50 / p99 / max`, value: [0.5, 0.99].map((q) => chunks[Math.floor(chunks.length * q)]!.toFixed(2)).concat(chunks.at(-1)!.toFixed(2)).join(' / ') });
rows.push({ measure: 'keys left after the sweep', value: swept.size });
table(`Rate limiter cost (in process, ${runtime.Bun ? `Bun ${runtime.Bun.version}` : `Node ${process.version}`})`, rows);
