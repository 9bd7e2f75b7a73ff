// Tried and not kept (BENCHMARKS.md): the strict UTF-8 decode before JSON.parse of the bench's
// event, as common/src/json.ts does it (TextDecoder with fatal: true), against Buffer.isUtf8 then
// toString, and against no check at all (what a non-strict server does).
// Usage: tests/node26/node_modules/.bin/node bench/utf8Decode.mjs   or   npx bun bench/utf8Decode.mjs
import { isUtf8 } from 'node:buffer';

const body = Buffer.from('{"userId":"a1b2c3d4-e5f6-7890-1234-567890abcdef","eventType":"user_login","timestamp":"2023-10-27T10:00:00Z","payload":{"ipAddress":"192.168.1.1","device":"desktop","browser":"Chrome"}}');
const strict = new TextDecoder('utf-8', { fatal: true });
const ways = {
  'TextDecoder fatal, then JSON.parse (as the API does)': () => JSON.parse(strict.decode(body)),
  'isUtf8, toString, then JSON.parse': () => {
    if (!isUtf8(body)) throw new Error('not UTF-8');
    return JSON.parse(body.toString('utf8'));
  },
  'toString, then JSON.parse (no check)': () => JSON.parse(body.toString('utf8')),
};

console.log(typeof Bun === 'undefined' ? `Node ${process.version}` : `Bun ${Bun.version}`);
for (let pass = 0; pass < 2; pass++) {
  for (const [name, way] of Object.entries(ways)) {
    for (let i = 0; i < 100_000; i++) way();
    const started = performance.now();
    for (let i = 0; i < 1_000_000; i++) way();
    if (pass === 1) console.log(`${(((performance.now() - started) / 1_000_000) * 1000).toFixed(2)} µs  ${name}`);
  }
}
