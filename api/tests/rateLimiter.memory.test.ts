// "Many clients": a million distinct client keys through the limiter stay within the memory bound
// BENCHMARKS.md section 2 states, and the sweep gives it back once their window has passed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SlidingLogLimiter } from '../src/rateLimit/slidingLog.ts';

/** BENCHMARKS.md section 2: at most 200 bytes per tracked client seen once (key string included). */
const DOCUMENTED_BYTES_PER_KEY = 200;
const KEYS = 1_000_000;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function memory(): number {
  gc();
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

test(`a million client keys cost at most ${DOCUMENTED_BYTES_PER_KEY} bytes each, and the sweep frees them after the window`, () => {
  let clock = 0;
  const before = memory();
  const limiter = new SlidingLogLimiter({ maxRequests: 50, windowMs: 60_000, maxKeys: KEYS, now: () => clock });
  for (let i = 0; i < KEYS; i++) {
    clock += 0.01; // a million requests over ten seconds
    limiter.hit(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  }
  const perKey = (memory() - before) / KEYS;
  assert.equal(limiter.size, KEYS);
  assert.ok(perKey <= DOCUMENTED_BYTES_PER_KEY, `measured ${perKey.toFixed(1)} bytes per key`);

  clock += 60_000;
  while (!limiter.sweep());
  assert.equal(limiter.size, 0);
  const left = (memory() - before) / KEYS;
  assert.ok(left < perKey / 10, `after the sweep ${left.toFixed(1)} bytes per key remain`);
});
