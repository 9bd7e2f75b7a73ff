// WRITE_KEYS on the ingestion routes, through HTTP: required when set, checked after the rate limit
// and before the body, the key's name stored as `source`, and no key ever in a log line.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request, type IncomingMessage } from 'node:http';
import type { ProblemDetails } from '@event-tracker/shared';
import { postJson, startApp, VALID_EVENT } from './helpers.ts';

const KEYS = { WRITE_KEYS: 'web=wk_web_5Jq2,backend=wk_backend_8Zr4' };
const SEGMENT_CALL = { type: 'track', event: 'Signed Up', userId: 'u1', messageId: 'm-1' };
const basic = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;

describe('write keys', () => {
  test('leave every ingestion route open while WRITE_KEYS is unset, storing no source', async (t) => {
    const app = await startApp(t);
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202);
    assert.equal((await postJson(`${app.url}/v1/track`, SEGMENT_CALL)).status, 200);
    assert.deepEqual(app.publisher.published.map(({ message }) => 'source' in message), [false, false]);
  });

  test('accept each way of giving the key and store its name, never the key, as source', async (t) => {
    const app = await startApp(t, { env: KEYS });
    const ways: Array<[string, Record<string, string>, string]> = [
      ['/api/v1/activities', { authorization: basic('wk_web_5Jq2') }, 'web'],
      ['/api/v1/activities', { authorization: 'Bearer wk_backend_8Zr4' }, 'backend'],
      ['/api/v1/events/track', { 'x-write-key': 'wk_web_5Jq2' }, 'web'],
      ['/api/v1/activities?writeKey=wk_backend_8Zr4', {}, 'backend'],
    ];
    for (const [path, headers] of ways) {
      const body = path.includes('events/track') ? { user_id: 1, event_type: 'login', timestamp: VALID_EVENT.timestamp } : VALID_EVENT;
      assert.equal((await postJson(`${app.url}${path}`, body, headers)).status, 202, path);
    }
    assert.equal((await postJson(`${app.url}/v1/batch`, { batch: [SEGMENT_CALL] }, { authorization: basic('wk_web_5Jq2') })).status, 200);
    assert.deepEqual(app.publisher.published.map(({ message }) => message.source), [...ways.map(([, , name]) => name), 'web']);
    assert.equal(JSON.stringify(app.publisher.published).includes('wk_'), false);
  });

  test('answer a missing or wrong key 401 problem+json with WWW-Authenticate and CORS headers, publishing nothing', async (t) => {
    const app = await startApp(t, { env: KEYS });
    for (const [path, headers] of [
      ['/api/v1/activities', {}],
      ['/api/v1/activities/batch', { authorization: basic('wk_web_5Jq2x') }],
      ['/v1/batch', { authorization: 'Bearer wrong' }],
      ['/v1/identify?writeKey=wrong', {}],
    ] as const) {
      const answer = await postJson(`${app.url}${path}`, { batch: [SEGMENT_CALL] }, { ...headers, origin: 'https://shop.example' });
      assert.equal(answer.status, 401, path);
      assert.equal(answer.headers.get('www-authenticate'), 'Basic realm="event-tracker"');
      assert.equal(answer.headers.get('access-control-allow-origin'), '*');
      assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/);
      const problem = (await answer.json()) as ProblemDetails;
      assert.equal(problem.type, '/problems/unauthorized');
    }
    assert.equal(app.publisher.published.length, 0);
  });

  test('answer 401 before reading the body: a request whose body never comes is refused at once', async (t) => {
    // Were the body read first, its 1 s deadline would answer 408 (or cut the connection), and the
    // assertions below would say so, rather than the test timing out.
    const app = await startApp(t, { env: { ...KEYS, REQUEST_TIMEOUT_MS: '1000', HEADERS_TIMEOUT_MS: '1000' } });
    const upload = request(`${app.url}/v1/batch`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '100000' } });
    upload.on('error', () => {}); // the server closes the connection after answering
    upload.write('{"batch":[');
    const [answer] = (await once(upload, 'response')) as [IncomingMessage];
    answer.resume();
    assert.equal(answer.statusCode, 401);
    assert.equal(answer.headers.connection, 'close');
    upload.destroy();
  });

  test('count failed attempts toward the rate limit, so guessing keys is limited like any request', async (t) => {
    const app = await startApp(t, { env: { ...KEYS, RATE_LIMIT_MAX_REQUESTS: '2' } });
    for (const guess of ['a', 'b']) assert.equal((await postJson(`${app.url}/v1/track`, SEGMENT_CALL, { 'x-write-key': guess })).status, 401);
    const answer = await postJson(`${app.url}/v1/track`, SEGMENT_CALL, { 'x-write-key': 'wk_web_5Jq2' });
    assert.equal(answer.status, 429);
    assert.ok(Number(answer.headers.get('retry-after')) >= 1);
    assert.equal(app.publisher.published.length, 0);
  });

  test('never write a key, right or wrong, into a log line', async (t) => {
    const app = await startApp(t, { env: KEYS });
    await postJson(`${app.url}/api/v1/activities?writeKey=wk_web_5Jq2`, VALID_EVENT);
    await postJson(`${app.url}/api/v1/activities?writeKey=wk_guess_1`, VALID_EVENT);
    await postJson(`${app.url}/v1/track`, SEGMENT_CALL, { authorization: basic('wk_guess_2') });
    await app.logged((line) => line.msg === 'request' && line.status === 401);
    assert.ok(app.logs.length >= 3);
    assert.equal(JSON.stringify(app.logs).includes('wk_'), false);
  });

  test('leave the probes, metrics and the document open with keys set', async (t) => {
    const app = await startApp(t, { env: KEYS });
    for (const path of ['/health/live', '/health/ready', '/metrics', '/openapi.json']) assert.equal((await fetch(`${app.url}${path}`)).status, 200, path);
  });
});
