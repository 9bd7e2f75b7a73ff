// Worst-case bodies for every ingestion route (issue 21): the shapes that cost the most per byte to
// read, parse, validate or publish, each as large as its route takes, sent plain and in every
// Content-Encoding the API accepts, plus a compression bomb per coding. The adversarial test
// (tests/contract/adversarial.test.ts) sends them to the app in process; bench/worstCase.ts to the
// API as deployed, to time them.
import { brotliCompressSync, constants, deflateSync, gzipSync } from 'node:zlib';
import { CALL_TYPES } from '../../api/src/segment.ts';
import { SUPPORTED_ENCODINGS, type Encoding } from '../../api/src/contentEncoding.ts';

/** The routes' size and count limits (the API's Config has them under these names). */
export interface BodyLimits {
  readonly maxBodyBytes: number;
  readonly maxBatchBodyBytes: number;
  readonly batchMaxEvents: number;
  readonly segmentMaxCallBytes: number;
  readonly segmentMaxBatchBytes: number;
}

export interface HostileRequest {
  readonly route: string;
  /** The shape, then the coding: `long key of 1e999s, gzip`. */
  readonly name: string;
  /** What the API must answer: 2xx when the body is a valid event, a 4xx problem otherwise. */
  readonly expect: 'accepted' | 'refused';
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** A payload shape: JSON text of at most `bytes` bytes (every shape is ASCII). */
interface Shape {
  readonly name: string;
  readonly valid: boolean;
  /** On the batch routes: many events of this payload, as a client batches them, rather than one as large as the body. */
  readonly spread?: boolean;
  /** On the batch routes, one event as large as the body (elsewhere there, events at the per-event limit): refused there. */
  readonly whole?: boolean;
  readonly payload: (bytes: number) => string;
}

const TIMESTAMP = '"2023-10-27T10:00:00Z"';

/** `open item(0),item(1),... close`: as many items as fit in `bytes`, `count` at most. */
function fill(bytes: number, open: string, close: string, item: (index: number) => string, count = Infinity): string {
  const parts: string[] = [];
  let size = open.length + close.length;
  for (let index = 0; index < count; index++) {
    const next = item(index);
    const added = next.length + (index === 0 ? 0 : 1);
    if (size + added > bytes) break;
    parts.push(next);
    size += added;
  }
  return `${open}${parts.join(',')}${close}`;
}

/** What a real client sends: short keys, strings, numbers, a nested object and a list. */
function realisticPayload(bytes: number): string {
  const item = (i: number) => `{"sku":"SKU-${i}","name":"Item number ${i}","quantity":${(i % 5) + 1},"price":${(i * 7.31).toFixed(2)},"tags":["sale","new"]}`;
  const head = '{"page":{"url":"https://shop.example.com/checkout?step=2","title":"Checkout","referrer":"https://www.example.org/"},"device":"desktop","ipAddress":"192.168.1.1","items":';
  return `${head}${fill(bytes - head.length - 1, '[', ']', item)}}`;
}

const SHAPES: readonly Shape[] = [
  { name: 'realistic events', valid: true, spread: true, payload: realisticPayload },
  {
    // The review's freeze: one long key holding as many invalid numbers as fit.
    name: 'long key of 1e999s',
    valid: false,
    payload: (bytes) => {
      const key = 'k'.repeat(Math.floor(bytes / 7));
      return fill(bytes, `{"${key}":[`, ']}', () => '1e999');
    },
  },
  { name: 'many keys', valid: true, payload: (bytes) => fill(bytes, '{', '}', (i) => `"k${i.toString(36)}":0`) },
  { name: 'many keys, as one event', valid: true, whole: true, payload: (bytes) => fill(bytes, '{', '}', (i) => `"k${i.toString(36)}":0`) },
  { name: 'many "$" keys', valid: false, payload: (bytes) => fill(bytes, '{', '}', (i) => `"$${i.toString(36)}":0`) },
  { name: 'huge array', valid: true, payload: (bytes) => fill(bytes, '{"a":[', ']}', () => '0') },
  { name: 'empty objects', valid: true, payload: (bytes) => fill(bytes, '{"a":[', ']}', () => '{}') },
  { name: 'long string', valid: true, payload: (bytes) => `{"a":"${'x'.repeat(Math.max(0, bytes - 8))}"}` },
  { name: 'lone surrogates', valid: false, payload: (bytes) => fill(bytes, '{"a":[', ']}', () => '"\\ud800"') },
  {
    // As the review sent it to /v1/batch: one call past the per-call limit, whose size was measured
    // with JSON.stringify, which ran out of stack (a 500).
    name: 'deep nesting',
    valid: false,
    whole: true,
    payload: (bytes) => {
      const levels = Math.floor((bytes - 1) / 6);
      return `${'{"a":'.repeat(levels)}0${'}'.repeat(levels)}`;
    },
  },
];

/** A route: where it is, how large its body may be, and its body around a payload shape, at that size. */
interface Route {
  readonly path: string;
  readonly limit: number;
  /** A batch route: its events have a limit of their own, under the body's. */
  readonly batch?: boolean;
  readonly body: (payload: (bytes: number) => string, shape: Shape) => string;
}

function routes(limits: BodyLimits): Route[] {
  const native = (payload: string) => `{"userId":"user-1","eventType":"click","timestamp":${TIMESTAMP},"payload":${payload}}`;
  const legacy = (payload: string) => `{"user_id":"user-1","event_type":"click","timestamp":${TIMESTAMP},"metadata":${payload}}`;
  const call = (type: string, payload: string) => `{"type":"${type}",${type === 'track' ? '"event":"click",' : ''}"userId":"user-1","timestamp":${TIMESTAMP},"properties":${payload}}`;
  /** One envelope around as much payload as fits in `bytes`. */
  const sized = (bytes: number, wrap: (payload: string) => string, payload: (bytes: number) => string) => wrap(payload(bytes - wrap('').length));
  /** `{"batch":[...]}` of `count` items sharing `bytes`. */
  const batch = (bytes: number, count: number, item: (bytes: number) => string) => {
    const open = '{"batch":[';
    const itemBytes = Math.floor((bytes - open.length - 2) / count) - 1;
    return fill(bytes, open, ']}', () => item(itemBytes), count);
  };
  return [
    { path: '/api/v1/activities', limit: limits.maxBodyBytes, body: (payload) => sized(limits.maxBodyBytes, native, payload) },
    { path: '/api/v1/events/track', limit: limits.maxBodyBytes, body: (payload) => sized(limits.maxBodyBytes, legacy, payload) },
    {
      // A valid batch is many events; a hostile one, events as large as one may be, as many as the
      // body holds; and one as large as the body, refused unparsed (its expect says so).
      path: '/api/v1/activities/batch',
      limit: limits.maxBatchBodyBytes,
      batch: true,
      body: (payload, shape) => {
        const count = shape.spread === true ? limits.batchMaxEvents : shape.whole === true ? 1 : Math.ceil(limits.maxBatchBodyBytes / limits.maxBodyBytes);
        const itemBytes = shape.whole === true ? limits.maxBatchBodyBytes : limits.maxBodyBytes;
        return batch(limits.maxBatchBodyBytes, count, (bytes) => sized(Math.min(bytes, itemBytes), native, payload));
      },
    },
    {
      // Every call as large as a call may be; as many of them as the body holds.
      path: '/v1/batch',
      limit: limits.segmentMaxBatchBytes,
      batch: true,
      body: (payload, shape) => {
        const count = shape.spread === true ? limits.batchMaxEvents : shape.whole === true ? 1 : Math.max(1, Math.floor(limits.segmentMaxBatchBytes / limits.segmentMaxCallBytes));
        const itemBytes = shape.whole === true ? limits.segmentMaxBatchBytes : Math.min(limits.segmentMaxCallBytes, Math.floor(limits.segmentMaxBatchBytes / count));
        return batch(limits.segmentMaxBatchBytes, count, (bytes) => sized(Math.min(bytes, itemBytes), (p) => call('track', p), payload));
      },
    },
    ...CALL_TYPES.map((type) => ({
      path: `/v1/${type}`,
      limit: limits.segmentMaxCallBytes,
      body: (payload: (bytes: number) => string) => sized(limits.segmentMaxCallBytes, (p) => call(type, p), payload),
    })),
  ];
}

function encode(body: Buffer, encoding: Encoding): Buffer {
  if (encoding === 'gzip') return gzipSync(body);
  if (encoding === 'deflate') return deflateSync(body);
  // Quality 11, brotli's default, takes seconds a MiB; what a client sends is usually lower.
  return brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } });
}

/**
 * Every ingestion route with its requests, generated one at a time (bodies up to a MiB each). Each
 * shape goes plain and in one coding, taking turns, so every route sees every coding; then one bomb
 * per coding: spaces that inflate to four times the route's limit.
 */
export function hostileRoutes(limits: BodyLimits): Array<{ readonly path: string; readonly requests: () => Generator<HostileRequest> }> {
  return routes(limits).map((route) => ({ path: route.path, requests: () => requestsFor(route) }));
}

function* requestsFor(route: Route): Generator<HostileRequest> {
  const json = { 'content-type': 'application/json' };
  for (const [index, shape] of SHAPES.entries()) {
    const plain = Buffer.from(route.body(shape.payload, shape));
    const expect = shape.valid && !(route.batch === true && shape.whole === true) ? 'accepted' : 'refused';
    yield { route: route.path, name: shape.name, expect, headers: json, body: plain };
    const encoding = SUPPORTED_ENCODINGS[index % SUPPORTED_ENCODINGS.length]!;
    yield { route: route.path, name: `${shape.name}, ${encoding}`, expect, headers: { ...json, 'content-encoding': encoding }, body: encode(plain, encoding) };
  }
  const spaces = Buffer.alloc(4 * route.limit, ' ');
  for (const encoding of SUPPORTED_ENCODINGS) {
    yield { route: route.path, name: `${encoding} bomb`, expect: 'refused', headers: { ...json, 'content-encoding': encoding }, body: encode(spaces, encoding) };
  }
}
