// The app with the real publisher against the real RabbitMQ, directly or through a TCP proxy
// that plays outages. Each test uses its own queue and deletes it afterwards.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import amqp from 'amqplib';
import { deleteTopology, serviceUrl, servicesMissing, uniqueName } from '../../tests/support/services.ts';
import { TcpProxy } from '../../tests/support/tcpProxy.ts';
import { waitFor } from '../../tests/support/processes.ts';
import { connectBroker } from '../src/brokerConnection.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '@event-tracker/common/logger.ts';
import { ConfirmPublisher } from '../src/publisher.ts';
import { postJson, startApp, VALID_EVENT } from './helpers.ts';

// Many connections from one address at once: the per-client cap is not what these tests are about.
const FAST = { AMQP_HEARTBEAT_SECONDS: '1', PUBLISH_TIMEOUT_MS: '1000', MAX_CONNECTIONS_PER_CLIENT: '1000' };

/** The app with a real publisher connected to `url` (the broker, or a proxy in front of it). */
async function startWithBroker(t: TestContext, url = serviceUrl('RABBITMQ_URL')) {
  const queue = uniqueName('api_test');
  const env = { ...FAST, QUEUE_NAME: queue, EVENTS_EXCHANGE: queue };
  const config = loadConfig({ ...env, RABBITMQ_URL: url });
  const publisher = new ConfirmPublisher({ exchange: config.topology.exchange, partitions: 1, publishTimeoutMs: config.publishTimeoutMs, maxUnconfirmed: config.maxUnconfirmed });
  const brokerLogs: string[] = [];
  const broker = connectBroker({
    nodes: config.brokerNodes,
    heartbeatSeconds: config.heartbeatSeconds,
    topology: config.topology,
    publisher,
    logger: createLogger({}, { write: (line) => brokerLogs.push(line) }),
    retry: { baseMs: 100, maxMs: 200 },
  });
  await waitFor('the first broker session', () => publisher.isReady());

  const admin = await amqp.connect(serviceUrl('RABBITMQ_URL'));
  const channel = await admin.createChannel();
  t.after(async () => {
    await broker.close();
    await admin.close().catch(() => {});
    await deleteTopology(queue);
  });
  const app = await startApp(t, { env, publisher });
  return { app, queue, channel, brokerLogs };
}

const health = async (url: string) => (await fetch(`${url}/health`)).status;

describe('API against RabbitMQ', { skip: servicesMissing('RABBITMQ_URL') }, () => {
  test('a 202 leaves exactly that message in the queue: body with the receive time, messageId, persistent, no headers', async (t) => {
    const { app, queue, channel } = await startWithBroker(t);
    const id = 'c0ffee00-1234-4abc-8def-0123456789ab';
    const response = await postJson(`${app.url}/api/v1/activities`, { ...VALID_EVENT, id });
    assert.equal(response.status, 202);
    assert.deepEqual(await response.json(), { status: 'accepted', id });

    const message = await channel.get(queue, { noAck: true });
    assert.ok(message, 'the queue holds the message');
    const receivedAt = new Date(app.clock.wall());
    assert.deepEqual(JSON.parse(message.content.toString()), { id, ...VALID_EVENT, receivedAt: receivedAt.toISOString() });
    assert.equal(message.properties.messageId, id);
    assert.equal(message.properties.deliveryMode, 2);
    assert.equal(message.properties.contentType, 'application/json');
    assert.equal(message.properties.timestamp, Math.floor(receivedAt.getTime() / 1000));
    // The broker adds x-delivery-count (quorum queue); the API sends no header table of its own.
    assert.deepEqual(Object.keys(message.properties.headers ?? {}).filter((name) => !name.startsWith('x-')), []);
    assert.equal(await channel.get(queue, { noAck: true }), false, 'and nothing else');
  });

  test('a confirmed batch leaves exactly its messages in the queue, one per event, ids in order', async (t) => {
    const { app, queue, channel } = await startWithBroker(t);
    const events = Array.from({ length: 25 }, (_, i) => ({ ...VALID_EVENT, payload: { i } }));
    const response = await postJson(`${app.url}/api/v1/activities/batch`, { batch: events });
    assert.equal(response.status, 202);
    const { ids } = (await response.json()) as { ids: string[] };
    const received = [];
    for (let message = await channel.get(queue, { noAck: true }); message !== false; message = await channel.get(queue, { noAck: true })) received.push(message);
    assert.equal(received.length, 25);
    assert.deepEqual(new Set(received.map((message) => message.properties.messageId)), new Set(ids));
    for (const message of received) {
      const body = JSON.parse(message.content.toString()) as { id: string; payload: { i: number } };
      assert.equal(body.id, ids[body.payload.i], 'each message is the event at its index');
    }
  });

  test('answers 503, not 202, when the queue was deleted (basic.return), then declares it again', async (t) => {
    const { app, queue, channel } = await startWithBroker(t);
    await channel.deleteQueue(queue);
    const response = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    assert.equal(response.status, 503);
    assert.match(((await response.json()) as { detail: string }).detail, /no queue took the event/);
    await waitFor('events to be accepted again', async () => (await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status === 202);
    assert.equal((await channel.checkQueue(queue)).messageCount, 1);
  });

  test('with the broker unreachable answers 503 at once, /health is 503, and it recovers by itself', async (t) => {
    const proxy = await TcpProxy.start(serviceUrl('RABBITMQ_URL'));
    t.after(() => proxy.close());
    const { app } = await startWithBroker(t, proxy.urlFor(serviceUrl('RABBITMQ_URL')));
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202);

    proxy.cut();
    await waitFor('/health to report 503', async () => (await health(app.url)) === 503);
    const refused = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '5');
    assert.match(((await refused.json()) as { detail: string }).detail, /connection is down/);

    proxy.restore();
    await waitFor('/health to report 200', async () => (await health(app.url)) === 200);
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202);
  });

  test('over a silently dead connection a publish ends in 503 within PUBLISH_TIMEOUT_MS, and heartbeats drop the connection', async (t) => {
    const proxy = await TcpProxy.start(serviceUrl('RABBITMQ_URL'));
    t.after(() => proxy.close());
    const { app, brokerLogs } = await startWithBroker(t, proxy.urlFor(serviceUrl('RABBITMQ_URL')));

    proxy.freeze();
    const response = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    assert.equal(response.status, 503);
    assert.match(((await response.json()) as { detail: string }).detail, /no broker confirm within 1000 ms/);
    await waitFor('/health to report 503', async () => (await health(app.url)) === 503);
    // Whichever side's heartbeat check fires first (ours, or RabbitMQ's, which closes the proxied socket).
    assert.ok(brokerLogs.some((line) => line.includes('"broker connection lost"')), brokerLogs.join('\n'));

    proxy.restore();
    await waitFor('/health to report 200', async () => (await health(app.url)) === 200);
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202);
  });

  test('60 requests from one address: exactly 50 accepted and queued, 10 × 429 with a sane Retry-After', async (t) => {
    const { app, queue, channel } = await startWithBroker(t);
    const responses = await Promise.all(Array.from({ length: 60 }, () => postJson(`${app.url}/api/v1/activities`, VALID_EVENT)));
    const statuses = responses.map((response) => response.status);
    assert.equal(statuses.filter((status) => status === 202).length, 50);
    assert.equal(statuses.filter((status) => status === 429).length, 10);
    for (const response of responses.filter((r) => r.status === 429)) {
      const retryAfter = Number(response.headers.get('retry-after'));
      assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    }
    assert.equal((await channel.checkQueue(queue)).messageCount, 50);
  });
});
