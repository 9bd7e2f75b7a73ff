// The HTTP surface with a fake publisher: both ingestion routes, every error answer, rate limiting,
// health and metrics, over real sockets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { ProblemDetails } from '@event-tracker/shared';
import { postJson, startApp, VALID_EVENT } from './helpers.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function problem(response: Response): Promise<ProblemDetails> {
  assert.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  return (await response.json()) as ProblemDetails;
}

describe('POST /api/v1/activities', () => {
  test('answers 202 with a fresh id once the event is published', async (t) => {
    const app = await startApp(t);
    const response = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    assert.equal(response.status, 202);
    const body = (await response.json()) as { status: string; id: string };
    assert.equal(body.status, 'accepted');
    assert.match(body.id, UUID);
    assert.deepEqual(app.publisher.published, [{ message: { id: body.id, ...VALID_EVENT }, receivedAt: new Date(app.clock.wall()) }]);
  });

  test("uses the client's id as the message id", async (t) => {
    const app = await startApp(t);
    const id = '5f0c6f3e-8a6b-4c1e-9f3a-2d7b1e4c9a00';
    const response = await postJson(`${app.url}/api/v1/activities`, { ...VALID_EVENT, id });
    assert.deepEqual(await response.json(), { status: 'accepted', id });
    assert.equal(app.publisher.published[0]!.message.id, id);
  });

  test('accepts application/json with a UTF-8 charset', async (t) => {
    const app = await startApp(t);
    const response = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT, { 'content-type': 'Application/JSON; charset=UTF-8' });
    assert.equal(response.status, 202);
  });

  test('answers 400 listing every invalid field, and publishes nothing', async (t) => {
    const app = await startApp(t);
    const response = await postJson(`${app.url}/api/v1/activities`, { ...VALID_EVENT, userId: '', timestamp: '2023-10-27T24:00:00Z', extra: 1 });
    assert.equal(response.status, 400);
    assert.deepEqual(await problem(response), {
      type: '/problems/invalid-event',
      title: 'Invalid event',
      status: 400,
      detail: 'The event has 3 problems; see "errors".',
      errors: [
        { field: 'extra', message: 'is not a known field (expected id, userId, eventType, timestamp, payload)' },
        { field: 'userId', message: 'must not be empty' },
        { field: 'timestamp', message: 'has no such time of day (hours 00-23, minutes and seconds 00-59)' },
      ],
    });
    assert.equal(app.publisher.published.length, 0);
  });

  for (const [label, body, detail] of [
    ['malformed JSON', '{"userId":', /^The body is not valid JSON: /],
    ['an empty body', '', /^The body is empty; send the event as a JSON object\.$/],
    ['a JSON array', '[]', /^The body must be a JSON object .*; got an array\.$/],
  ] as const) {
    test(`answers 400 with an actionable detail for ${label}`, async (t) => {
      const app = await startApp(t);
      const response = await postJson(`${app.url}/api/v1/activities`, body);
      assert.equal(response.status, 400);
      assert.match((await problem(response)).detail, detail);
    });
  }

  test('answers 400 for a body that is not UTF-8', async (t) => {
    const app = await startApp(t);
    const response = await fetch(`${app.url}/api/v1/activities`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from([0x7b, 0xff, 0x7d]),
    });
    assert.equal(response.status, 400);
    assert.equal((await problem(response)).detail, 'The body is not valid UTF-8.');
  });

  for (const contentType of ['text/csv', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', undefined]) {
    test(`answers 415 for content type ${contentType ?? '(none)'}`, async (t) => {
      const app = await startApp(t);
      const response = await fetch(`${app.url}/api/v1/activities`, {
        method: 'POST',
        headers: contentType === undefined ? {} : { 'content-type': contentType },
        body: contentType === undefined ? new Uint8Array(Buffer.from(JSON.stringify(VALID_EVENT))) : JSON.stringify(VALID_EVENT),
      });
      assert.equal(response.status, 415);
      assert.equal((await problem(response)).type, '/problems/unsupported-media-type');
    });
  }

  test('answers 413 from Content-Length alone, before reading the body', async (t) => {
    const app = await startApp(t, { env: { MAX_BODY_BYTES: '100' } });
    const response = await postJson(`${app.url}/api/v1/activities`, { ...VALID_EVENT, payload: { text: 'x'.repeat(200) } });
    assert.equal(response.status, 413);
    assert.equal(response.headers.get('connection'), 'close');
    assert.equal((await problem(response)).detail, 'The body must be at most 100 bytes, as sent and once decompressed.');
  });

  test('answers 413 while a chunked body is still streaming in, without waiting for the rest', async (t) => {
    const app = await startApp(t, { env: { MAX_BODY_BYTES: '1024' } });
    const upload = request(`${app.url}/api/v1/activities`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    upload.on('error', () => {});
    upload.write(Buffer.alloc(2048, 0x20)); // never ended: the server must answer on its own
    const [response] = (await once(upload, 'response')) as [IncomingMessage];
    assert.equal(response.statusCode, 413);
    upload.destroy();
  });

  test('keeps __proto__ and constructor keys in the payload as data, never touching Object.prototype', async (t) => {
    const app = await startApp(t);
    const body = `{"userId":"u","eventType":"e","timestamp":"2023-10-27T10:00:00Z","payload":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}}`;
    const response = await postJson(`${app.url}/api/v1/activities`, body);
    assert.equal(response.status, 202);
    const { payload } = app.publisher.published[0]!.message;
    assert.equal(JSON.stringify(payload), '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('answers 503 with Retry-After at once while the broker is down, and /health says so', async (t) => {
    const app = await startApp(t);
    app.publisher.ready = false;
    const response = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('retry-after'), '5');
    assert.equal((await problem(response)).type, '/problems/queue-unavailable');
    const health = await fetch(`${app.url}/health`);
    assert.equal(health.status, 503);
    assert.deepEqual(await health.json(), { status: 'unavailable', checks: { rabbitmq: 'down' } });
  });

  test('answers 503 queue-unavailable with the event id when the event was not queued, and a retry with it is the way forward', async (t) => {
    const app = await startApp(t);
    app.publisher.failWith('refused', 'the broker refused the event');
    const id = '5f0c6f3e-8a6b-4c1e-9f3a-2d7b1e4c9a00';
    const response = await postJson(`${app.url}/api/v1/activities`, { ...VALID_EVENT, id });
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('retry-after'), '5');
    const body = await problem(response);
    assert.equal(body.type, '/problems/queue-unavailable');
    assert.equal(body.id, id);
    assert.equal(body.detail, `The event was not accepted: the broker refused the event. Retry with id ${id}; it is stored once.`);
  });

  test('answers 503 publish-outcome-unknown with the generated id when no confirm came, saying the broker may hold the event', async (t) => {
    const app = await startApp(t);
    app.publisher.failWith('unknown', 'no broker confirm within 5000 ms');
    const response = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('retry-after'), '5');
    const body = await problem(response);
    assert.equal(body.type, '/problems/publish-outcome-unknown');
    assert.match(body.id ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(body.detail, `The event may or may not have been queued: no broker confirm within 5000 ms. Retry with id ${body.id}; it is stored once either way.`);
  });

  test('answers a bare 500 and logs the error when something unexpected breaks', async (t) => {
    const app = await startApp(t, {
      publisher: { isReady: () => true, unconfirmed: 0, publish: () => Promise.reject(new TypeError('bug in publisher')), publishAll: () => Promise.reject(new TypeError('bug in publisher')) },
    });
    const response = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    assert.equal(response.status, 500);
    assert.doesNotMatch(await response.text(), /bug in publisher/);
    const logged = await app.logged((line) => line.msg === 'unhandled error');
    assert.equal((logged.err as { message: string }).message, 'bug in publisher');
  });

  test('handles a client that hangs up mid-body quietly', async (t) => {
    const app = await startApp(t);
    const upload = request(`${app.url}/api/v1/activities`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': '1000' },
    });
    upload.on('error', () => {});
    upload.write('{"userId":');
    await once(app.server, 'request');
    upload.destroy();
    const line = await app.logged((entry) => entry.msg === 'request');
    assert.equal(line.status, 499);
    assert.equal(app.logs.filter((entry) => entry.level >= 40).length, 0, 'nothing logged as a warning or error');
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202, 'the server carries on');
  });
});

describe('POST /api/v1/events/track', () => {
  test('accepts the snake_case contract and publishes the normalised event', async (t) => {
    const app = await startApp(t);
    const legacy = { user_id: 42, event_type: 'login', timestamp: '2023-10-27T10:00:00Z', metadata: { ip: '127.0.0.1' } };
    const response = await postJson(`${app.url}/api/v1/events/track`, legacy);
    assert.equal(response.status, 202);
    const { id } = (await response.json()) as { id: string };
    assert.deepEqual(app.publisher.published[0]!.message, {
      id,
      userId: '42',
      eventType: 'login',
      timestamp: '2023-10-27T10:00:00Z',
      payload: { ip: '127.0.0.1' },
    });
  });

  test('answers 400 naming the snake_case fields', async (t) => {
    const app = await startApp(t);
    const response = await postJson(`${app.url}/api/v1/events/track`, { user_id: true, event_type: 'login', timestamp: '2023-10-27T10:00:00Z' });
    assert.equal(response.status, 400);
    assert.deepEqual((await problem(response)).errors, [{ field: 'user_id', message: 'must be a string, not a boolean' }]);
  });
});

describe('routing', () => {
  test('answers 404 problem+json for an unknown path', async (t) => {
    const app = await startApp(t);
    const response = await fetch(`${app.url}/nope`);
    assert.equal(response.status, 404);
    assert.deepEqual(await problem(response), { type: '/problems/not-found', title: 'Not Found', status: 404, detail: 'No resource at this path.' });
  });

  test('answers 405 with Allow for a known path and another method', async (t) => {
    const app = await startApp(t);
    const get = await fetch(`${app.url}/api/v1/activities`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST, OPTIONS');
    assert.equal((await problem(get)).type, '/problems/method-not-allowed');
    const post = await fetch(`${app.url}/health`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET');
  });

  test('ignores the query string when routing', async (t) => {
    const app = await startApp(t);
    assert.equal((await postJson(`${app.url}/api/v1/activities?source=sdk`, VALID_EVENT)).status, 202);
  });
});

describe('rate limiting', () => {
  test('answers 429 with Retry-After once 50 requests are in the window, and lets the client back in after it', async (t) => {
    const app = await startApp(t);
    for (let i = 0; i < 50; i++) assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202);
    app.clock.advance(30_000);
    const refused = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '30');
    assert.equal(refused.headers.get('ratelimit-remaining'), '0');
    assert.equal((await problem(refused)).type, '/problems/rate-limited');
    assert.equal(app.publisher.published.length, 50);
    app.clock.advance(30_000);
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202);
  });

  test('a wall clock stepped back 10 minutes changes no Retry-After: windows run on the monotonic clock, receive times on the wall clock', async (t) => {
    const app = await startApp(t);
    for (let i = 0; i < 50; i++) assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202);
    app.clock.stepWall(-600_000);
    app.clock.advance(30_000);
    const refused = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    assert.equal(refused.headers.get('retry-after'), '30');
    app.clock.advance(30_000);
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202);
    assert.equal(app.publisher.published.at(-1)!.receivedAt.getTime(), app.clock.wall(), 'receivedAt is the (stepped) wall clock');
  });

  test('closes the connection after a 429 or a 415, which are answered before the body is read', async (t) => {
    const app = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '1' } });
    const unsupported = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT, { 'content-type': 'text/csv' });
    assert.equal(unsupported.status, 415);
    assert.equal(unsupported.headers.get('connection'), 'close');
    const limited = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('connection'), 'close');
  });

  test('counts invalid requests too, and checks the limit before reading the body', async (t) => {
    const app = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '2', MAX_BODY_BYTES: '10' } });
    assert.equal((await postJson(`${app.url}/api/v1/activities`, '{}')).status, 400);
    assert.equal((await postJson(`${app.url}/api/v1/events/track`, { padding: 'x'.repeat(20) })).status, 413);
    const refused = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    assert.equal(refused.status, 429, 'a 429, not a 413: the oversized body was never looked at');
  });

  test('puts RateLimit headers on every /api/ response, 404s included', async (t) => {
    const app = await startApp(t);
    const accepted = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    assert.deepEqual(
      ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'ratelimit-policy'].map((name) => accepted.headers.get(name)),
      ['50', '49', '60', '50;w=60'],
    );
    const missing = await fetch(`${app.url}/api/v2/unknown`);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('ratelimit-remaining'), '48');
  });

  test('does not limit /health or /metrics', async (t) => {
    const app = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '1' } });
    await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    for (let i = 0; i < 3; i++) {
      const health = await fetch(`${app.url}/health`);
      assert.equal(health.status, 200);
      assert.equal(health.headers.get('ratelimit-limit'), null);
      assert.equal((await fetch(`${app.url}/metrics`)).status, 200);
    }
  });

  test('ignores X-Forwarded-For unless TRUST_PROXY is set', async (t) => {
    const app = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '1' } });
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT, { 'x-forwarded-for': '198.51.100.1' })).status, 202);
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT, { 'x-forwarded-for': '198.51.100.2' })).status, 429);
  });

  test('with TRUST_PROXY=1, limits each forwarded client on its own', async (t) => {
    const app = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '1', TRUST_PROXY: '1' } });
    const post = (forwardedFor: string) => postJson(`${app.url}/api/v1/activities`, VALID_EVENT, { 'x-forwarded-for': forwardedFor });
    assert.equal((await post('198.51.100.1')).status, 202);
    assert.equal((await post('198.51.100.2')).status, 202);
    assert.equal((await post('6.6.6.6, 198.51.100.1')).status, 429, 'a forged entry on the left changes nothing');
  });
});

describe('probes', () => {
  test('/health/live answers 200 while the broker is down; /health/ready and /health answer 503 then, 200 once it is up', async (t) => {
    const app = await startApp(t);
    app.publisher.ready = false;
    const live = await fetch(`${app.url}/health/live`);
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { status: 'ok', checks: {} });
    for (const path of ['/health/ready', '/health']) {
      const answer = await fetch(`${app.url}${path}`);
      assert.equal(answer.status, 503, path);
      assert.deepEqual(await answer.json(), { status: 'unavailable', checks: { rabbitmq: 'down' } });
    }
    app.publisher.ready = true;
    assert.equal((await fetch(`${app.url}/health/ready`)).status, 200);
    assert.equal((await fetch(`${app.url}/health/live`)).status, 200);
  });
});

describe('GET /health and /metrics', () => {
  test('/health answers 200 with the HealthReport shape while the broker is up', async (t) => {
    const app = await startApp(t);
    const response = await fetch(`${app.url}/health`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: 'ok', checks: { rabbitmq: 'up' } });
  });

  test('/metrics reports requests by route and status, 429s, confirm latency, broker state and limiter keys', async (t) => {
    const app = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '1' } });
    await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    await fetch(`${app.url}/nope`);
    app.publisher.ready = false;
    const response = await fetch(`${app.url}/metrics`);
    assert.equal(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const text = await response.text();
    for (const line of [
      'api_http_requests_total{route="/api/v1/activities",status="202"} 1',
      'api_http_requests_total{route="/api/v1/activities",status="429"} 1',
      'api_http_requests_total{route="unmatched",status="404"} 1',
      'api_rate_limited_requests_total 1',
      'api_publish_confirm_seconds_count 1',
      'api_broker_connection_up 0',
      'api_publish_unconfirmed 0',
      'api_rate_limiter_keys 1',
    ]) {
      assert.ok(text.split('\n').includes(line), `missing "${line}" in:\n${text}`);
    }
  });
});

describe('publish metrics', () => {
  test('counts publish failures by reason and times them with the confirms', async (t) => {
    const app = await startApp(t);
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202);
    app.publisher.failWith('refused');
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 503);
    app.publisher.failWith('unknown');
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 503);
    app.publisher.failWith(undefined);
    app.publisher.ready = false;
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 503);
    const lines = (await (await fetch(`${app.url}/metrics`)).text()).split('\n');
    for (const line of [
      'api_publish_failures_total{reason="nacked"} 1',
      'api_publish_failures_total{reason="confirm-timeout"} 1',
      'api_publish_failures_total{reason="not-connected"} 1',
      'api_publish_confirm_seconds_count 4',
    ]) {
      assert.ok(lines.includes(line), `missing "${line}"`);
    }
  });
});

describe('server', () => {
  test('caps connections at MAX_CONNECTIONS', async (t) => {
    const { server } = await startApp(t, { env: { MAX_CONNECTIONS: '3' } });
    assert.equal(server.maxConnections, 3);
  });

  test('bounds slow clients: headers within 10 s, the whole request within 30 s; keeps idle sockets 65 s, past load balancers\' 60 s', async (t) => {
    const { server } = await startApp(t);
    assert.deepEqual([server.headersTimeout, server.requestTimeout, server.keepAliveTimeout], [10_000, 30_000, 65_000]);
  });

  test('answers 408 and closes the connection of a client whose body does not arrive within REQUEST_TIMEOUT_MS, and serves others', async (t) => {
    const app = await startApp(t, { env: { HEADERS_TIMEOUT_MS: '100', REQUEST_TIMEOUT_MS: '200' } });
    const stalled = request(`${app.url}/api/v1/activities`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': '1000' },
    });
    stalled.on('error', () => {}); // the write side may see the close first
    const answered = once(stalled, 'response') as Promise<[IncomingMessage]>;
    stalled.write('{"userId":');
    await once(app.server, 'request');
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202, 'others are served meanwhile');

    const [response] = await answered;
    assert.equal(response.statusCode, 408);
    assert.equal(response.headers.connection, 'close');
    assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8');
    const socketClosed = response.socket.destroyed ? Promise.resolve() : once(response.socket, 'close');
    const body = JSON.parse(Buffer.concat((await response.toArray()) as Buffer[]).toString()) as ProblemDetails;
    assert.deepEqual([body.type, body.status], ['/problems/body-timeout', 408]);
    await socketClosed;
    const line = await app.logged((entry) => entry.msg === 'request' && entry.status === 408);
    assert.equal(line.route, '/api/v1/activities');
  });
});

describe('request logs', () => {
  test('logs one JSON line per request with method, route, status and duration, never the body', async (t) => {
    const app = await startApp(t);
    await postJson(`${app.url}/api/v1/activities`, { ...VALID_EVENT, payload: { secret: 'do-not-log-me' } });
    const line = await app.logged((entry) => entry.msg === 'request');
    assert.equal(line.level, 30);
    assert.equal(line.method, 'POST');
    assert.equal(line.route, '/api/v1/activities');
    assert.equal(line.status, 202);
    assert.equal(typeof line.durationMs, 'number');
    assert.doesNotMatch(JSON.stringify(app.logs), /do-not-log-me/);
  });
});
