import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { BodyTooLarge, InvalidEvent, MethodNotAllowed, NotFound, PublishOutcomeUnknown, QueueUnavailable, RateLimited, UnsupportedMediaType } from '../src/errors.ts';
import { createLogger } from '@event-tracker/common/logger.ts';
import { writeProblem } from '../src/problem.ts';

/** Answers every request by handing `error` to the problem writer; returns the URL and the log lines. */
async function answering(t: TestContext, error: unknown) {
  const logs: string[] = [];
  const logger = createLogger({}, { write: (line) => logs.push(line) });
  const server = createServer((_req, res) => writeProblem(res, error, logger));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, logs };
}

describe('writeProblem', () => {
  const cases = [
    [new InvalidEvent('bad', [{ field: 'userId', message: 'is required' }]), 400, '/problems/invalid-event', {}],
    [new NotFound(), 404, '/problems/not-found', {}],
    [new MethodNotAllowed(['POST']), 405, '/problems/method-not-allowed', { allow: 'POST' }],
    [new BodyTooLarge(10), 413, '/problems/body-too-large', { connection: 'close' }],
    [new UnsupportedMediaType(), 415, '/problems/unsupported-media-type', {}],
    [new RateLimited(7), 429, '/problems/rate-limited', { 'retry-after': '7' }],
    [new QueueUnavailable('not-connected', 'the broker connection is down', 'e-1'), 503, '/problems/queue-unavailable', { 'retry-after': '5' }],
    [new PublishOutcomeUnknown('confirm-timeout', 'no broker confirm within 5000 ms', 'e-1'), 503, '/problems/publish-outcome-unknown', { 'retry-after': '5' }],
  ] as const;

  for (const [error, status, type, headers] of cases) {
    test(`answers ${error.name} with ${status} problem+json of type ${type}`, async (t) => {
      const { url, logs } = await answering(t, error);
      const response = await fetch(url);
      assert.equal(response.status, status);
      assert.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      for (const [name, value] of Object.entries(headers)) assert.equal(response.headers.get(name), value);
      const body = (await response.json()) as Record<string, unknown>;
      const members = status === 503 ? ['type', 'title', 'status', 'detail', 'id'] : ['type', 'title', 'status', 'detail'];
      assert.deepEqual(Object.keys(body).filter((key) => key !== 'errors'), members);
      assert.equal(body.type, type);
      assert.equal(body.status, status);
      assert.equal(body.detail, error.message);
      assert.deepEqual(logs, [], 'expected errors are not logged as failures');
    });
  }

  test('lists field errors in "errors"', async (t) => {
    const { url } = await answering(t, new InvalidEvent('bad', [{ field: 'userId', message: 'is required' }]));
    assert.deepEqual(((await (await fetch(url)).json()) as { errors: unknown }).errors, [{ field: 'userId', message: 'is required' }]);
  });

  test('answers an unknown error with a bare 500 that echoes nothing, and logs it in full', async (t) => {
    const { url, logs } = await answering(t, new TypeError('secret internals at /srv/app.ts'));
    const response = await fetch(url);
    assert.equal(response.status, 500);
    const text = await response.text();
    assert.doesNotMatch(text, /secret|TypeError|srv/);
    assert.deepEqual(JSON.parse(text), {
      type: 'about:blank',
      title: 'Internal Server Error',
      status: 500,
      detail: 'The server failed to handle the request.',
    });
    const [line] = logs.map((entry) => JSON.parse(entry) as { level: number; msg: string; err: { type: string; message: string; stack: string } });
    assert.equal(line!.level, 50);
    assert.equal(line!.err.type, 'TypeError');
    assert.equal(line!.err.message, 'secret internals at /srv/app.ts');
    assert.ok(line!.err.stack.length > 0);
  });
});
