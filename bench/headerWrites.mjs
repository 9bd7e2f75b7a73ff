// Tried and not kept (BENCHMARKS.md): the cost of the API's response headers as set today (four
// RateLimit-* setHeader calls, then writeHead with three more) against one writeHead with all seven
// as a flat array, and against the three without rate-limit headers. No socket: writeHead builds
// the header block all the same. Each figure includes making the ServerResponse.
// Usage: tests/node26/node_modules/.bin/node bench/headerWrites.mjs   or   npx bun bench/headerWrites.mjs
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';

const request = new IncomingMessage(new Socket());
request.method = 'POST';
request.httpVersionMajor = 1;
request.httpVersionMinor = 1;
const BODY_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': '65', 'Cache-Control': 'no-store' };
const rate = { 'RateLimit-Limit': '50', 'RateLimit-Remaining': '49', 'RateLimit-Reset': '60', 'RateLimit-Policy': '50;w=60' };

const ways = {
  'setHeader x4, then writeHead(status, object of 3) (as the API does)': () => {
    const res = new ServerResponse(request);
    for (const [name, value] of Object.entries(rate)) res.setHeader(name, value);
    res.writeHead(202, BODY_HEADERS);
  },
  'one writeHead(status, flat array of 7)': () => {
    const res = new ServerResponse(request);
    res.writeHead(202, [...Object.entries(rate), ...Object.entries(BODY_HEADERS)].flat());
  },
  'writeHead(status, object of 3), no rate-limit headers': () => {
    const res = new ServerResponse(request);
    res.writeHead(202, BODY_HEADERS);
  },
};

console.log(typeof Bun === 'undefined' ? `Node ${process.version}` : `Bun ${Bun.version}`);
for (const [name, way] of Object.entries(ways)) {
  for (let i = 0; i < 20_000; i++) way();
  const started = performance.now();
  for (let i = 0; i < 200_000; i++) way();
  console.log(`${(((performance.now() - started) / 200_000) * 1000).toFixed(2)} µs  ${name}`);
}
