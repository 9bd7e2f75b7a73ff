// The /v1/* (Segment tracking API) routes with the fake publisher: what the SDKs send, the answers
// they act on (200 only once confirmed, 400, 413, 429 and 503 with Retry-After), CORS and gzip.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import type { ProblemDetails } from '@event-tracker/shared';
import { MESSAGE_ID_NAMESPACE } from '../src/segment.ts';
import { uuidV5 } from '../src/uuidV5.ts';
import { postJson, startApp } from './helpers.ts';

const TRACK = { type: 'track', event: 'Order Completed', userId: 'u1', properties: { total: 10 }, timestamp: '2026-01-02T03:04:00.123Z', messageId: 'm-1' };
const PAGE = { type: 'page', name: 'Home', anonymousId: 'anon-1', originalTimestamp: '2026-01-02T03:04:01.000Z', messageId: 'm-2' };

describe('POST /v1/batch', () => {
  test('answers 200 {"success":true} once every call is published, each as its own message with the mapping', async (t) => {
    const app = await startApp(t);
    const answer = await postJson(`${app.url}/v1/batch`, { batch: [TRACK, PAGE], writeKey: 'ignored', sentAt: '2026-01-02T03:04:05.000Z' });
    assert.equal(answer.status, 200);
    assert.deepEqual(await answer.json(), { success: true });
    const messages = app.publisher.published.map(({ message }) => message);
    assert.deepEqual(messages[0], {
      id: uuidV5(MESSAGE_ID_NAMESPACE, 'm-1'),
      userId: 'u1',
      eventType: 'Order Completed',
      timestamp: '2026-01-02T03:04:00.123Z',
      payload: { type: 'track', properties: { total: 10 }, messageId: 'm-1' },
    });
    assert.deepEqual([messages[1]!.userId, messages[1]!.eventType, messages[1]!.timestamp], ['anon-1', 'page', '2026-01-02T03:04:01.000Z']);
  });

  test('reads gzip JSON labelled application/x-www-form-urlencoded, as the RudderStack SDK sends it', async (t) => {
    const app = await startApp(t);
    const body = gzipSync(JSON.stringify({ batch: [TRACK], sentAt: '2026-01-02T03:04:05.000Z', timestamp: '2026-01-02T03:04:05.000Z' }));
    const answer = await fetch(`${app.url}/v1/batch`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' }, body });
    assert.equal(answer.status, 200);
    assert.equal(app.publisher.published.length, 1);
  });

  test('gives a call without messageId a fresh random id, and a retried call with one the same id', async (t) => {
    const app = await startApp(t);
    const { messageId: _none, ...anonymous } = TRACK;
    for (let i = 0; i < 2; i++) assert.equal((await postJson(`${app.url}/v1/batch`, { batch: [TRACK, anonymous] })).status, 200);
    const ids = app.publisher.published.map(({ message }) => message.id);
    assert.equal(ids[0], ids[2]);
    assert.notEqual(ids[1], ids[3]);
  });

  test('answers 400 with the Segment path of each problem, and publishes nothing of the batch', async (t) => {
    const app = await startApp(t);
    const answer = await postJson(`${app.url}/v1/batch`, { batch: [TRACK, { ...TRACK, properties: { 'a.b': 1 } }] });
    assert.equal(answer.status, 400);
    assert.deepEqual(((await answer.json()) as ProblemDetails).errors, [{ field: 'batch[1].properties.a.b', message: 'keys must not contain "."' }]);
    assert.equal((await postJson(`${app.url}/v1/batch`, '{"batch":[')).status, 400);
    assert.equal(app.publisher.published.length, 0);
  });

  test('answers 413 past SEGMENT_MAX_BATCH_BYTES, and for one call past SEGMENT_MAX_CALL_BYTES', async (t) => {
    const app = await startApp(t, { env: { SEGMENT_MAX_CALL_BYTES: '300', SEGMENT_MAX_BATCH_BYTES: '1000' } });
    const big = { ...TRACK, properties: { text: 'x'.repeat(300) } };
    const overBatch = await postJson(`${app.url}/v1/batch`, { batch: [TRACK, TRACK, TRACK, TRACK, TRACK, TRACK, TRACK, TRACK] });
    assert.equal(overBatch.status, 413);
    const overCall = await postJson(`${app.url}/v1/batch`, { batch: [TRACK, big] });
    assert.equal(overCall.status, 413);
    assert.match(((await overCall.json()) as ProblemDetails).detail, /^batch\[1\] must be at most 300 bytes/);
    assert.equal((await postJson(`${app.url}/v1/track`, big)).status, 413);
    assert.equal(app.publisher.published.length, 0);
  });

  test('answers 503 with Retry-After when a call is not confirmed, never 200 for a batch partly queued', async (t) => {
    const app = await startApp(t);
    app.publisher.failWith('unknown', 'no confirm', 1);
    const answer = await postJson(`${app.url}/v1/batch`, { batch: [TRACK, PAGE] });
    assert.equal(answer.status, 503);
    assert.equal(answer.headers.get('retry-after'), '5');
    assert.equal(((await answer.json()) as ProblemDetails).ids?.length, 2);
  });

  test('is rate limited with Retry-After like the native routes', async (t) => {
    const app = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '1' } });
    assert.equal((await postJson(`${app.url}/v1/batch`, { batch: [TRACK] })).status, 200);
    const limited = await postJson(`${app.url}/v1/batch`, { batch: [TRACK] });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  });

  test('answers CORS preflights allowing the write-key headers, and puts Allow-Origin on answers', async (t) => {
    const app = await startApp(t, { env: { CORS_ALLOWED_ORIGINS: 'https://shop.example' } });
    const preflight = await fetch(`${app.url}/v1/batch`, { method: 'OPTIONS', headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST' } });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Authorization, X-Write-Key/);
    const answer = await postJson(`${app.url}/v1/batch`, { batch: [TRACK] }, { origin: 'https://shop.example' });
    assert.equal(answer.headers.get('access-control-allow-origin'), 'https://shop.example');
    assert.equal((await postJson(`${app.url}/v1/batch`, { batch: [TRACK] }, { origin: 'https://elsewhere.example' })).status, 403);
  });
});

describe('POST /v1/<type>', () => {
  test('publishes the single call of each route with the route\'s type, answering 200 {"success":true}', async (t) => {
    const app = await startApp(t);
    const { type: _type, ...call } = TRACK;
    for (const type of ['track', 'identify', 'page', 'screen', 'group', 'alias']) {
      const answer = await fetch(`${app.url}/v1/${type}`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: JSON.stringify(call) });
      assert.equal(answer.status, 200, type);
      assert.deepEqual(await answer.json(), { success: true });
    }
    const published = app.publisher.published.map(({ message }) => [message.eventType, message.payload.type]);
    assert.deepEqual(published, [['Order Completed', 'track'], ['identify', 'identify'], ['page', 'page'], ['screen', 'screen'], ['group', 'group'], ['alias', 'alias']]);
  });

  test('stamps a call without timestamp with the receive time', async (t) => {
    const app = await startApp(t);
    assert.equal((await postJson(`${app.url}/v1/identify`, { userId: 'u1', traits: { plan: 'pro' } })).status, 200);
    const [{ message, receivedAt }] = app.publisher.published as [(typeof app.publisher.published)[number]];
    assert.equal(message.timestamp, receivedAt.toISOString());
    assert.equal(message.timestamp, new Date(app.clock.wall()).toISOString());
  });
});
