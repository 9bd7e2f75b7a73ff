// Holds api/openapi.json to what the API really answers. Every documented operation and status code
// is produced by a real request (fake publisher); each answer must have a documented media type, its
// required headers, and a body that fits the documented schema. Probes of other inputs must get a
// code the document lists, and the route table must have exactly the documented paths and methods.
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { systemClock } from '@event-tracker/common/clock.ts';
import { createApiMetrics } from '../src/apiMetrics.ts';
import { allowedMethods, routeTable } from '../src/routes.ts';
import { CALL_TYPES } from '../src/segment.ts';
import { FakePublisher, postJson, startApp, VALID_EVENT } from './helpers.ts';
import { FakeSharedStore } from './fakeSharedStore.ts';
import type { TestApp } from './helpers.ts';

interface Schema {
  readonly $ref?: string;
  readonly type?: string;
  readonly const?: unknown;
  readonly enum?: readonly unknown[];
  readonly required?: readonly string[];
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly additionalProperties?: boolean;
  readonly propertyNames?: Schema;
  readonly items?: Schema;
  readonly allOf?: readonly Schema[];
  readonly oneOf?: readonly Schema[];
  readonly not?: Schema;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly maxItems?: number;
}
interface HeaderDoc {
  readonly $ref?: string;
  readonly required?: boolean;
  readonly schema: Schema;
}
interface ResponseDoc {
  readonly $ref?: string;
  readonly headers?: Readonly<Record<string, HeaderDoc>>;
  readonly content?: Readonly<Record<string, { readonly schema: Schema }>>;
}
interface OpenApiDocument {
  readonly openapi: string;
  readonly paths: Readonly<Record<string, Readonly<Record<string, { readonly responses: Readonly<Record<string, ResponseDoc>> }>>>>;
  readonly 'x-unrouted-responses': Readonly<Record<string, ResponseDoc>>;
}

const documentText = readFileSync(new URL('../openapi.json', import.meta.url), 'utf8');
const doc = JSON.parse(documentText) as OpenApiDocument;

/** Follows a local `#/...` reference (repeatedly) to the object it names. */
function resolve<T extends { readonly $ref?: string }>(node: T): T {
  if (node.$ref === undefined) return node;
  const target = node.$ref
    .slice(2)
    .split('/')
    .reduce<unknown>((at, key) => (at as Record<string, unknown>)[key], doc);
  assert.ok(target !== undefined, `openapi.json: dangling $ref ${node.$ref}`);
  return resolve(target as T);
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && Number.isInteger(value)) return 'integer';
  return typeof value;
}

/** The ways `value` breaks `schema`: the JSON Schema keywords openapi.json uses, nothing more. */
function violations(value: unknown, schema: Schema, at: string): string[] {
  const { $ref, ...own } = schema;
  const found = $ref === undefined ? [] : violations(value, resolve({ $ref }), at);
  const fail = (what: string): void => void found.push(`${at} ${what}`);
  const type = typeOf(value);
  if (own.type !== undefined && type !== own.type && !(own.type === 'number' && type === 'integer')) {
    fail(`is ${type}, not ${own.type}`);
    return found;
  }
  if ('const' in own && value !== own.const) fail(`is ${JSON.stringify(value)}, not ${JSON.stringify(own.const)}`);
  if (own.enum !== undefined && !own.enum.includes(value)) fail(`is ${JSON.stringify(value)}, not one of ${JSON.stringify(own.enum)}`);
  if (typeof value === 'string') {
    const length = [...value].length;
    if (own.minLength !== undefined && length < own.minLength) fail(`is shorter than ${own.minLength}`);
    if (own.maxLength !== undefined && length > own.maxLength) fail(`is longer than ${own.maxLength}`);
    if (own.pattern !== undefined && !new RegExp(own.pattern, 'u').test(value)) fail(`does not match ${own.pattern}`);
  }
  if (typeof value === 'number') {
    if (own.minimum !== undefined && value < own.minimum) fail(`is below ${own.minimum}`);
    if (own.maximum !== undefined && value > own.maximum) fail(`is above ${own.maximum}`);
  }
  for (const part of own.allOf ?? []) found.push(...violations(value, part, at));
  if (own.oneOf !== undefined && own.oneOf.filter((part) => violations(value, part, at).length === 0).length !== 1) fail('matches not exactly one oneOf branch');
  if (own.not !== undefined && violations(value, own.not, at).length === 0) fail('matches a "not" schema');
  if (type === 'object') {
    const object = value as Record<string, unknown>;
    for (const name of own.required ?? []) if (!(name in object)) fail(`lacks required field ${name}`);
    for (const [name, child] of Object.entries(object)) {
      const property = own.properties?.[name];
      if (property !== undefined) found.push(...violations(child, property, `${at}.${name}`));
      else if (own.additionalProperties === false) fail(`has undocumented field ${name}`);
      if (own.propertyNames !== undefined) found.push(...violations(name, own.propertyNames, `${at} key ${JSON.stringify(name)}`));
    }
  }
  if (Array.isArray(value)) {
    if (own.maxItems !== undefined && value.length > own.maxItems) fail(`has more than ${own.maxItems} items`);
    if (own.items !== undefined) value.forEach((item, index) => found.push(...violations(item, own.items!, `${at}[${index}]`)));
  }
  return found;
}

/** Headers whose presence means something; any of them on an answer must be documented there. */
const MEANINGFUL_HEADERS = ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'ratelimit-policy', 'retry-after', 'allow', 'www-authenticate'];

/** Asserts that `response` is what `documented` says: media type, headers, body schema. */
async function assertMatches(response: Response, documented: ResponseDoc, label: string): Promise<void> {
  const spec = resolve(documented);
  const headers = new Map(Object.entries(spec.headers ?? {}).map(([name, header]) => [name.toLowerCase(), resolve(header)]));
  for (const [name, header] of headers) {
    const raw = response.headers.get(name);
    if (raw === null) {
      assert.ok(header.required !== true, `${label}: documented header ${name} is missing`);
      continue;
    }
    const isInteger = header.schema.type === 'integer' || typeof header.schema.const === 'number';
    if (isInteger) assert.match(raw, /^-?\d+$/, `${label}: header ${name} is not an integer`);
    assert.deepEqual(violations(isInteger ? Number(raw) : raw, header.schema, `${label}: header ${name}`), []);
  }
  for (const name of MEANINGFUL_HEADERS) {
    if (response.headers.has(name)) assert.ok(headers.has(name), `${label}: header ${name} is sent but not documented`);
  }

  if (spec.content === undefined) {
    assert.equal(await response.text(), '', `${label}: documented without a body, yet it has one`);
    return;
  }
  const contentType = response.headers.get('content-type') ?? '';
  const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
  const content = spec.content[mediaType];
  assert.ok(content !== undefined, `${label}: content type ${contentType} is not documented (${Object.keys(spec.content ?? {}).join(', ')})`);
  const text = await response.text();
  const body: unknown = mediaType.endsWith('json') ? JSON.parse(text) : text;
  assert.deepEqual(violations(body, content.schema, `${label}: body`), []);
}

const OTHER_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'];

function send(app: TestApp<FakePublisher>, method: string, path: string, body?: string | Uint8Array, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${app.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
}

/** A valid and an invalid body for each ingestion path, in the contract it accepts. */
interface Contract {
  readonly valid: Record<string, unknown>;
  /** The status of an accepted request: 202, or Segment's 200 on /v1/*. */
  readonly success: 200 | 202;
  readonly invalid: Record<string, unknown>;
  /** A valid body over 100 bytes, and the variables whose limit it breaks. */
  readonly large: Record<string, unknown>;
  readonly limit: Readonly<Record<string, string>>;
  /** Headers that make the valid body 415. */
  readonly unsupported: Readonly<Record<string, string>>;
}
const SEGMENT_CALL = { userId: 'u1', event: 'Order Completed', properties: { total: 10 }, messageId: 'm-1', timestamp: '2023-10-27T10:00:00.000Z' };
const CONTRACTS: Readonly<Record<string, Contract>> = {
  '/api/v1/activities': {
    valid: { ...VALID_EVENT },
    success: 202,
    invalid: { ...VALID_EVENT, userId: '', extra: 1 },
    large: { ...VALID_EVENT, payload: { text: 'x'.repeat(200) } },
    limit: { MAX_BODY_BYTES: '100' },
    unsupported: { 'content-type': 'text/csv' },
  },
  '/api/v1/activities/batch': {
    valid: { batch: [{ ...VALID_EVENT }, { ...VALID_EVENT }] },
    success: 202,
    invalid: { batch: [{ ...VALID_EVENT }, { ...VALID_EVENT, timestamp: 'today' }] },
    large: { batch: [{ ...VALID_EVENT, payload: { text: 'x'.repeat(200) } }] },
    limit: { MAX_BATCH_BODY_BYTES: '100' },
    unsupported: { 'content-type': 'text/csv' },
  },
  '/api/v1/events/track': {
    valid: { user_id: 42, event_type: 'login', timestamp: '2023-10-27T10:00:00+02:00', metadata: { plan: 'pro' } },
    success: 202,
    invalid: { user_id: 1.5, event_type: 'login', timestamp: '2023-10-27T10:00:00', id: 'x' },
    large: { user_id: 42, event_type: 'login', timestamp: '2023-10-27T10:00:00+02:00', metadata: { text: 'x'.repeat(200) } },
    limit: { MAX_BODY_BYTES: '100' },
    unsupported: { 'content-type': 'text/csv' },
  },
  // The Segment routes read JSON whatever the Content-Type: only an unknown coding is 415.
  '/v1/batch': {
    valid: { batch: [{ type: 'track', ...SEGMENT_CALL }, { type: 'page', anonymousId: 'a1', name: 'Home' }], writeKey: 'k', sentAt: '2023-10-27T10:00:01.000Z' },
    success: 200,
    invalid: { batch: [{ type: 'track', ...SEGMENT_CALL, properties: { 'a.b': 1 } }, { type: 'identify' }] },
    large: { batch: [{ type: 'track', ...SEGMENT_CALL, properties: { text: 'x'.repeat(200) } }] },
    limit: { SEGMENT_MAX_CALL_BYTES: '100', SEGMENT_MAX_BATCH_BYTES: '100' },
    unsupported: { 'content-encoding': 'compress' },
  },
  ...Object.fromEntries(
    CALL_TYPES.map((type) => [
      `/v1/${type}`,
      {
        valid: { ...SEGMENT_CALL },
        success: 200,
        invalid: { ...SEGMENT_CALL, userId: undefined, event: '' },
        large: { ...SEGMENT_CALL, properties: { text: 'x'.repeat(200) } },
        limit: { SEGMENT_MAX_CALL_BYTES: '100' },
        unsupported: { 'content-encoding': 'compress' },
      } satisfies Contract,
    ]),
  ),
};

/** A policy that allows one origin, and an origin it refuses. */
const ONLY_SHOP = { CORS_ALLOWED_ORIGINS: 'https://shop.example' };
const STRANGER = 'https://elsewhere.example';

type Scenario = (t: TestContext) => Promise<Response>;

/** POSTs headers and the start of a body that never finishes, and returns the answer as a Response. */
async function stalledPost(url: string): Promise<Response> {
  const upload = request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '1000' } });
  upload.on('error', () => {}); // the server closes the connection after answering
  upload.write('{"userId":');
  const [answer] = (await once(upload, 'response')) as [IncomingMessage];
  const body = Buffer.concat((await answer.toArray()) as Buffer[]);
  const headers = new Headers(Object.entries(answer.headers).map(([name, value]) => [name, String(value)]));
  return new Response(body, { status: answer.statusCode!, headers });
}

/** One request per documented (operation, status) that makes the API answer with that status. */
function scenarios(): Map<string, Scenario> {
  const found = new Map<string, Scenario>();
  for (const [path, { valid, success, invalid, large, limit, unsupported }] of Object.entries(CONTRACTS)) {
    const post = async (t: TestContext, body: unknown, options: { env?: Record<string, string>; headers?: Record<string, string>; broken?: boolean } = {}) => {
      const app = await startApp(t, options.env === undefined ? {} : { env: options.env });
      if (options.broken === true) app.publisher.ready = false;
      return postJson(`${app.url}${path}`, body, options.headers);
    };
    found.set(`POST ${path} ${success}`, (t) => post(t, valid));
    found.set(`POST ${path} 400`, (t) => post(t, invalid));
    found.set(`POST ${path} 401`, (t) => post(t, valid, { env: { WRITE_KEYS: 'web=wk_openapi' }, headers: { authorization: 'Bearer wk_wrong' } }));
    found.set(`POST ${path} 408`, async (t) => stalledPost(`${(await startApp(t, { env: { HEADERS_TIMEOUT_MS: '100', REQUEST_TIMEOUT_MS: '200' } })).url}${path}`));
    found.set(`POST ${path} 413`, (t) => post(t, large, { env: limit }));
    found.set(`POST ${path} 403`, (t) => post(t, valid, { env: ONLY_SHOP, headers: { origin: STRANGER } }));
    const preflight = async (t: TestContext, origin: string) => {
      const app = await startApp(t, { env: ONLY_SHOP });
      return fetch(`${app.url}${path}`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    };
    found.set(`OPTIONS ${path} 204`, (t) => preflight(t, 'https://shop.example'));
    found.set(`OPTIONS ${path} 403`, (t) => preflight(t, STRANGER));
    found.set(`POST ${path} 415`, (t) => post(t, valid, { headers: unsupported }));
    found.set(`POST ${path} 503`, (t) => post(t, valid, { broken: true }));
    found.set(`POST ${path} 429`, async (t) => {
      const app = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '1' } });
      assert.equal((await postJson(`${app.url}${path}`, valid)).status, success);
      return postJson(`${app.url}${path}`, valid);
    });
  }
  for (const path of ['/health', '/health/ready']) {
    found.set(`GET ${path} 200`, async (t) => fetch(`${(await startApp(t)).url}${path}`));
    found.set(`GET ${path} 503`, async (t) => {
      const app = await startApp(t);
      app.publisher.ready = false;
      return fetch(`${app.url}${path}`);
    });
  }
  // Live whatever the broker does: the probe is made while the publisher has no channel.
  found.set('GET /health/live 200', async (t) => {
    const app = await startApp(t);
    app.publisher.ready = false;
    return fetch(`${app.url}/health/live`);
  });
  found.set('GET /metrics 200', async (t) => fetch(`${(await startApp(t)).url}/metrics`));
  found.set('GET /openapi.json 200', async (t) => fetch(`${(await startApp(t)).url}/openapi.json`));
  return found;
}

const SCENARIOS = scenarios();
const documented = Object.entries(doc.paths).flatMap(([path, operations]) =>
  Object.entries(operations).flatMap(([method, operation]) =>
    Object.entries(operation.responses).map(([status, response]) => ({ key: `${method.toUpperCase()} ${path} ${status}`, status: Number(status), response })),
  ),
);

describe('openapi.json: every documented answer really occurs as documented', () => {
  for (const { key, status, response } of documented) {
    test(`${key} answers with the documented media type, headers and body`, async (t) => {
      const scenario = SCENARIOS.get(key);
      assert.ok(scenario !== undefined, `no request in this test produces ${key}: add one, or take the code out of openapi.json`);
      const answer = await scenario(t);
      assert.equal(answer.status, status);
      await assertMatches(answer, response, key);
    });
  }

  test('every status the requests above produce is documented for its operation', () => {
    const keys = new Set(documented.map(({ key }) => key));
    assert.deepEqual([...SCENARIOS.keys()].filter((key) => !keys.has(key)), []);
  });
});

describe('openapi.json: requests that match no operation', () => {
  const unrouted = doc['x-unrouted-responses'];

  for (const path of ['/nope', '/api/v1/nope', '/api/v1/activities/extra']) {
    test(`answers 404 as documented for ${path}`, async (t) => {
      const app = await startApp(t);
      const answer = await send(app, 'GET', path);
      assert.equal(answer.status, 404);
      await assertMatches(answer, unrouted['404']!, `GET ${path}`);
    });
  }

  for (const [path, operations] of Object.entries(doc.paths)) {
    const allowed = Object.keys(operations).map((method) => method.toUpperCase());
    test(`answers 405 as documented with Allow: ${allowed.join(', ')} for other methods on ${path}`, async (t) => {
      const app = await startApp(t);
      for (const method of OTHER_METHODS.filter((other) => !allowed.includes(other))) {
        const answer = await send(app, method, path);
        assert.equal(answer.status, 405, `${method} ${path}`);
        assert.deepEqual(answer.headers.get('allow')?.split(', ').sort(), [...allowed].sort());
        if (method === 'HEAD') continue; // no body to check
        await assertMatches(answer, unrouted['405']!, `${method} ${path}`);
      }
    });
  }

  test('documents exactly the paths and methods of the route table', () => {
    const metrics = createApiMetrics();
    const routes = routeTable({
      publisher: new FakePublisher(),
      maxBodyBytes: 1,
      maxBatchBodyBytes: 1,
      batchMaxEvents: 1,
      segmentMaxCallBytes: 1,
      segmentMaxBatchBytes: 1,
      bodyTimeoutMs: 1_000,
      clock: systemClock,
      metrics,
      registry: metrics.registry,
    });
    const fromRoutes = [...routes].flatMap(([path, route]) => allowedMethods(route).map((method) => `${method} ${path}`)).sort();
    const fromDocument = Object.entries(doc.paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`)).sort();
    assert.deepEqual(fromDocument, fromRoutes);
  });
});

/** Inputs beyond the scenarios: whatever they get must be a code documented for the operation. */
const PROBES: ReadonlyArray<{ readonly label: string; readonly body: string | Uint8Array; readonly headers?: Record<string, string>; readonly failure?: 'refused' | 'unknown' }> = [
  { label: 'malformed JSON', body: '{"userId":' },
  { label: 'an empty body', body: '' },
  { label: 'a JSON array', body: '[]' },
  { label: 'JSON null', body: 'null' },
  { label: 'bytes that are not UTF-8', body: new Uint8Array([0x7b, 0xff, 0x7d]), headers: { 'content-type': 'application/json' } },
  { label: 'a Latin-1 charset', body: '{}', headers: { 'content-type': 'application/json; charset=iso-8859-1' } },
  { label: 'no content type', body: new Uint8Array([0x7b, 0x7d]), headers: {} },
  { label: 'a payload nested 40 deep', body: JSON.stringify({ ...VALID_EVENT, payload: JSON.parse('{"a":'.repeat(40) + '1' + '}'.repeat(40)) }) },
  { label: 'a $-prefixed payload key', body: JSON.stringify({ ...VALID_EVENT, payload: { $where: 'x' } }) },
  { label: 'an upper-case UUID id', body: JSON.stringify({ ...VALID_EVENT, id: '5F0C6F3E-8A6B-4C1E-9F3A-2D7B1E4C9A00' }) },
  { label: 'a __proto__ payload key', body: '{"userId":"u","eventType":"e","timestamp":"2023-10-27T10:00:00Z","payload":{"__proto__":{"x":1}}}' },
  { label: 'a leap second', body: JSON.stringify({ ...VALID_EVENT, timestamp: '2016-12-31T23:59:60Z' }) },
  { label: 'a legacy event with a string user_id', body: JSON.stringify({ user_id: 'u-1', event_type: 'login', timestamp: '2023-10-27T10:00:00Z' }) },
  { label: 'a publish the broker nacks', body: JSON.stringify(VALID_EVENT), failure: 'refused' },
  { label: 'a publish never confirmed', body: JSON.stringify(VALID_EVENT), failure: 'unknown' },
];

describe('openapi.json: other inputs get documented codes only', () => {
  for (const path of Object.keys(CONTRACTS)) {
    const responses = doc.paths[path]!.post!.responses;
    for (const probe of PROBES) {
      test(`POST ${path} with ${probe.label} answers a documented code`, async (t) => {
        const app = await startApp(t);
        if (probe.failure !== undefined) app.publisher.failWith(probe.failure);
        const answer = await send(app, 'POST', path, probe.body, probe.headers ?? { 'content-type': 'application/json' });
        const documentedResponse = responses[String(answer.status)];
        assert.ok(documentedResponse !== undefined, `POST ${path} with ${probe.label} answered ${answer.status}, which openapi.json does not list`);
        await assertMatches(answer, documentedResponse, `POST ${path} (${probe.label})`);
      });
    }
  }
});

describe('GET /openapi.json', () => {
  test('serves api/openapi.json, an OpenAPI 3.1 document, without rate limiting it', async (t) => {
    const app = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '1' } });
    for (let i = 0; i < 3; i++) {
      const answer = await fetch(`${app.url}/openapi.json`);
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get('ratelimit-limit'), null);
      assert.deepEqual(await answer.json(), JSON.parse(documentText));
    }
    assert.match(doc.openapi, /^3\.1\.\d+$/);
  });
});

describe('readiness with the shared rate limit (RATE_LIMIT_STORE=redis)', () => {
  for (const [state, mode] of [['down', 'unreachable'], ['up', 'answer']] as const) {
    test(`GET /health/ready with Redis ${state} answers 200 as documented, Redis under info`, async (t) => {
      const store = new FakeSharedStore({ maxRequests: 50, windowMs: 60_000 }, systemClock.now);
      store.mode = mode;
      const app = await startApp(t, { sharedStore: store });
      await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
      const answer = await fetch(`${app.url}/health/ready`);
      assert.equal(answer.status, 200);
      assert.deepEqual(((await answer.clone().json()) as { info?: unknown }).info, { redis: state });
      await assertMatches(answer, doc.paths['/health/ready']!.get!.responses['200']!, `GET /health/ready, Redis ${state}`);
    });
  }
});
