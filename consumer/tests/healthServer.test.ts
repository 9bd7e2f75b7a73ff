import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { createConsumerMetrics } from '../src/consumerMetrics.ts';
import { createHealthServer, type HealthChecks } from '../src/healthServer.ts';
import { memoryLogger } from './fakes.ts';

async function serve(t: TestContext, checks: HealthChecks) {
  const metrics = createConsumerMetrics();
  const server = createHealthServer({ checks, registry: metrics.registry, logger: memoryLogger().logger });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const { port } = server.address() as AddressInfo;
  return { metrics, get: (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${port}${path}`, init) };
}

const up = { rabbitmq: () => true, mongodb: async () => true };

describe('health server', () => {
  test('answers 200 ok when the channel is open and the database answers', async (t) => {
    const { get } = await serve(t, up);
    const response = await get('/health');
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/json');
    assert.deepEqual(await response.json(), { status: 'ok', checks: { rabbitmq: 'up', mongodb: 'up' } });
  });

  test('answers /health/live 200 whatever the dependencies say, and /health/ready as /health', async (t) => {
    const { get } = await serve(t, { rabbitmq: () => false, mongodb: async () => false });
    const live = await get('/health/live');
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { status: 'ok', checks: {} });
    const ready = await get('/health/ready');
    assert.equal(ready.status, 503);
    assert.deepEqual(await ready.json(), { status: 'unavailable', checks: { rabbitmq: 'down', mongodb: 'down' } });
    const { get: getUp } = await serve(t, up);
    assert.equal((await getUp('/health/ready')).status, 200);
  });

  test('answers 503 with the same shape, naming what is down', async (t) => {
    const { get } = await serve(t, { rabbitmq: () => true, mongodb: async () => false });
    const response = await get('/health');
    assert.equal(response.status, 503);
    assert.deepEqual(await response.json(), { status: 'unavailable', checks: { rabbitmq: 'up', mongodb: 'down' } });

    const { get: getOther } = await serve(t, { rabbitmq: () => false, mongodb: async () => true });
    assert.deepEqual(await (await getOther('/health')).json(), { status: 'unavailable', checks: { rabbitmq: 'down', mongodb: 'up' } });
  });

  test('serves the metrics in Prometheus text format', async (t) => {
    const { get, metrics } = await serve(t, up);
    metrics.stored.inc({}, 3);
    metrics.batchSize.observe(3);
    const response = await get('/metrics');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    assert.match(text, /^consumer_messages_stored_total 3$/m);
    assert.match(text, /^consumer_batch_size_bucket\{le="5"\} 1$/m);
    for (const name of ['consumer_duplicates_skipped_total', 'consumer_messages_dead_lettered_total', 'consumer_write_retries_total', 'consumer_write_duration_seconds', 'consumer_connection_up']) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'));
    }
  });

  test('answers 404 for any other path and 405 for other methods', async (t) => {
    const { get } = await serve(t, up);
    assert.equal((await get('/nope')).status, 404);
    const post = await get('/health', { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });
});
