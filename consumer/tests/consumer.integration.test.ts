// The assembled consumer, in process, against the real RabbitMQ and MongoDB-protocol server. Each
// test has its own queue and database; outages go through TcpProxy, never by stopping a server.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import amqp, { type ChannelModel, type ConfirmChannel, type Options } from 'amqplib';
import { MongoClient, type Db } from 'mongodb';
import { CLIENT_OPTIONS, COLLECTION, createActivityStore } from '../src/activityStore.ts';
import { buildConsumer, type Consumer } from '../src/app.ts';
import { Broker } from '../src/broker.ts';
import { loadConfig } from '../src/config.ts';
import { idFromContent } from '../src/services/activityProcessor.ts';
import { assertTopology, deadLetterQueueName } from '@event-tracker/common/broker/topology.ts';
import { deleteTopology, serviceUrl, servicesMissing, testTopology, uniqueName } from '../../tests/support/services.ts';
import { waitFor } from '../../tests/support/processes.ts';
import { TcpProxy } from '../../tests/support/tcpProxy.ts';
import { event, memoryLogger } from './fakes.ts';

describe('consumer against RabbitMQ and the MongoDB-protocol server', { skip: servicesMissing('RABBITMQ_URL', 'DATABASE_URL') }, () => {
  let verifier: MongoClient;
  let publisher: ChannelModel;
  let channel: ConfirmChannel;

  before(async () => {
    verifier = new MongoClient(serviceUrl('DATABASE_URL'), CLIENT_OPTIONS);
    publisher = await amqp.connect(serviceUrl('RABBITMQ_URL'));
    channel = await publisher.createConfirmChannel();
  });
  after(async () => {
    await publisher.close();
    await verifier.close();
  });

  interface Running {
    readonly consumer: Consumer;
    readonly queue: string;
    readonly db: Db;
    readonly lines: Record<string, unknown>[];
    /** waitFor, with the consumer's recent log lines in the error when it times out. */
    until(what: string, check: () => Promise<boolean> | boolean, timeoutMs?: number): Promise<void>;
    health(): Promise<{ status: number; body: unknown }>;
    publish(body: unknown, properties?: Options.Publish): Promise<void>;
    ids(): Promise<string[]>;
  }

  /** Starts a consumer on a fresh queue and database; `through` puts proxies in its way. */
  async function start(t: TestContext, through: { database?: TcpProxy; broker?: TcpProxy } = {}, env: Record<string, string> = {}): Promise<Running> {
    const queue = uniqueName('activities');
    const database = uniqueName('consumer');
    const databaseUrl = new URL(through.database?.urlFor(serviceUrl('DATABASE_URL')) ?? serviceUrl('DATABASE_URL'));
    databaseUrl.pathname = `/${database}`;
    const config = loadConfig({
      RABBITMQ_URL: through.broker?.urlFor(serviceUrl('RABBITMQ_URL')) ?? serviceUrl('RABBITMQ_URL'),
      DATABASE_URL: databaseUrl.toString(),
      QUEUE_NAME: queue,
      EVENTS_EXCHANGE: queue,
      PREFETCH: '20',
      BATCH_SIZE: '10',
      RETRY_BASE_MS: '50',
      RETRY_MAX_MS: '500',
      ...env,
    });
    await assertTopology(channel, config.topology); // as the API would, so publishing never races the consumer

    const { logger, lines } = memoryLogger();
    const client = new MongoClient(config.databaseUrl, CLIENT_OPTIONS);
    const consumer = buildConsumer({ config, store: createActivityStore(client.db(config.databaseName)), logger });
    await new Promise<void>((resolve) => consumer.healthServer.listen(0, '127.0.0.1', resolve));
    const { port } = consumer.healthServer.address() as AddressInfo;
    await consumer.start();

    const db = verifier.db(database);
    t.after(async () => {
      consumer.writer.stop();
      await consumer.broker.close();
      consumer.healthServer.close();
      await client.close();
      await db.dropDatabase();
      await deleteTopology(queue);
    });
    return {
      consumer,
      queue,
      db,
      lines,
      until: (what, check, timeoutMs) => waitFor(what, check, timeoutMs, () => `consumer log:\n${lines.slice(-30).map((line) => JSON.stringify(line)).join('\n')}`),
      async health() {
        const response = await fetch(`http://127.0.0.1:${port}/health`);
        return { status: response.status, body: await response.json() };
      },
      async publish(body, properties = {}) {
        const content = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
        channel.sendToQueue(queue, content, { persistent: true, ...properties });
        await channel.waitForConfirms();
      },
      async ids() {
        const docs = await db.collection(COLLECTION).find({}, { projection: { _id: 1 } }).toArray();
        return docs.map((doc) => String(doc._id)).sort();
      },
    };
  }

  const publishEvents = async (running: Running, ids: string[]) => {
    for (const id of ids) await running.publish(event(id), { messageId: id });
  };
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `event-${String(from + i).padStart(3, '0')}`);
  const queueState = (queue: string) => channel.checkQueue(queue);

  test('stores published messages as documents with exactly the event fields, then reports healthy', async (t) => {
    const running = await start(t);
    const withHeader = event('with-header', { payload: { page: '/pricing', nested: { a: [1, 2] } } });
    await running.publish(withHeader, { messageId: 'with-header', headers: { receivedAt: '2023-10-27T10:00:01.250Z' } });
    await running.publish(event('no-header'), { messageId: 'no-header' });
    const { id: _none, ...anonymous } = event('unused');
    await running.publish(anonymous);
    await running.until('three documents', async () => (await running.ids()).length === 3);

    const docs = await running.db.collection(COLLECTION).find().toArray();
    const byId = new Map(docs.map((doc) => [String(doc._id), doc]));
    const stored = byId.get('with-header')!;
    assert.ok(stored.processedAt instanceof Date);
    assert.deepEqual(stored, {
      _id: 'with-header',
      id: 'with-header',
      userId: 'user-1',
      eventType: 'page_view',
      timestamp: new Date('2023-10-27T10:00:00Z'),
      payload: { page: '/pricing', nested: { a: [1, 2] } },
      receivedAt: new Date('2023-10-27T10:00:01.250Z'),
      processedAt: stored.processedAt,
    });
    assert.deepEqual(Object.keys(byId.get('no-header')!).sort(), ['_id', 'eventType', 'id', 'payload', 'processedAt', 'timestamp', 'userId']);
    assert.ok(byId.has(idFromContent(Buffer.from(JSON.stringify(anonymous)))), 'a message without an id is stored under the id of its body');

    assert.deepEqual(await running.health(), { status: 200, body: { status: 'ok', checks: { rabbitmq: 'up', mongodb: 'up' } } });
    assert.equal(running.consumer.metrics.stored.get(), 3);
  });

  test('stores one document when the same messageId is published twice', async (t) => {
    const running = await start(t);
    await running.publish(event('twice'), { messageId: 'twice' });
    await running.publish(event('twice'), { messageId: 'twice' });
    const { metrics } = running.consumer;
    await running.until('both deliveries acked', () => metrics.stored.get() + metrics.duplicates.get() === 2);
    assert.deepEqual(await running.ids(), ['twice']);
    assert.equal(metrics.duplicates.get(), 1);
  });

  test('moves a malformed message to the dead-letter queue and stores the good ones', async (t) => {
    const running = await start(t);
    await running.publish('{"userId": "u1", "eventType":', { messageId: 'broken' });
    await running.publish(event('good'), { messageId: 'good' });
    const dead = deadLetterQueueName(running.queue);
    await running.until('the dead-letter queue to hold the message', async () => (await queueState(dead)).messageCount === 1);
    const message = await channel.get(dead, { noAck: true });
    assert.ok(message);
    assert.equal(message.content.toString(), '{"userId": "u1", "eventType":');
    assert.equal(message.properties.messageId, 'broken');
    assert.match(String(message.properties.headers?.['x-rejection-reason']), /^The body is not valid JSON: /);
    assert.ok(!Number.isNaN(Date.parse(String(message.properties.headers?.['x-rejected-at']))));
    await running.until('the good message stored', async () => (await running.ids()).length === 1);
    // Closed, the channel would hand back anything unacked; the main queue stays empty.
    await running.consumer.stop();
    assert.equal((await queueState(running.queue)).messageCount, 0, 'the original was acked once its copy was confirmed');
    const rejection = running.lines.find((line) => line.msg === 'message rejected to the dead-letter queue');
    assert.equal(rejection?.cause, 'unparseable');
    assert.equal(rejection?.reason, undefined, 'the reason (which may quote the payload) is not logged');
  });

  test('loses and duplicates nothing when the database is cut off mid-stream and comes back', async (t) => {
    const proxy = await TcpProxy.start(serviceUrl('DATABASE_URL'));
    t.after(() => proxy.close());
    const running = await start(t, { database: proxy });
    const { consumer } = running;

    await publishEvents(running, range(0, 30));
    await running.until('the first 30 stored', async () => (await running.ids()).length === 30);

    proxy.cut();
    await publishEvents(running, range(30, 31));
    await running.until('the consumer to notice the outage and stop consuming', () => !consumer.writer.storeHealthy && !consumer.broker.consuming);
    assert.deepEqual((await running.health()).body, { status: 'unavailable', checks: { rabbitmq: 'up', mongodb: 'down' } });
    await publishEvents(running, range(31, 70));
    assert.equal((await queueState(running.queue)).messageCount, 39, 'published during the outage, left in the queue');
    assert.equal(consumer.writer.inHand, 1);

    proxy.restore();
    await running.until('all 70 stored', async () => (await running.ids()).length === 70, 60_000);
    assert.deepEqual(await running.ids(), range(0, 70));
    await running.until('consumption resumed and the queue drained', async () => consumer.broker.consuming && (await queueState(running.queue)).messageCount === 0);
    assert.equal((await running.health()).status, 200);
    assert.ok(consumer.metrics.retries.get() > 0);
    assert.equal((await queueState(deadLetterQueueName(running.queue))).messageCount, 0, 'no good message was dead-lettered');
  });

  test('gives up on a write the database never answers after WRITE_TIMEOUT_MS, pauses, and stores everything once when the path returns', async (t) => {
    const proxy = await TcpProxy.start(serviceUrl('DATABASE_URL'));
    t.after(() => proxy.close());
    const running = await start(t, { database: proxy }, { WRITE_TIMEOUT_MS: '300' });
    const { consumer } = running;
    await publishEvents(running, range(0, 10));
    await running.until('the first 10 stored', async () => (await running.ids()).length === 10);

    proxy.freeze(); // bytes stop, sockets stay open: the driver sees no error
    await publishEvents(running, range(10, 20));
    await running.until('the unanswered write given up and consumption paused', () => !consumer.writer.storeHealthy && !consumer.broker.consuming);
    assert.ok(running.lines.some((line) => line.msg === 'batch write failed' && JSON.stringify(line.err).includes('within 300 ms')));

    proxy.restore();
    await running.until('all 20 stored', async () => (await running.ids()).length === 20, 60_000);
    assert.deepEqual(await running.ids(), range(0, 20));
  });

  test('drops what it holds when the broker connection is lost during a database outage, and stores each message once after both return', async (t) => {
    const databaseProxy = await TcpProxy.start(serviceUrl('DATABASE_URL'));
    const brokerProxy = await TcpProxy.start(serviceUrl('RABBITMQ_URL'));
    t.after(() => Promise.all([databaseProxy.close(), brokerProxy.close()]));
    const running = await start(t, { database: databaseProxy, broker: brokerProxy });
    const { consumer } = running;
    await running.until('consuming', () => consumer.broker.consuming);

    databaseProxy.cut();
    await publishEvents(running, range(0, 15));
    await running.until('deliveries in hand, unacked', () => !consumer.writer.storeHealthy && consumer.writer.inHand > 0);

    // What a consumer_timeout does after 30 minutes: the broker takes back the unacked deliveries.
    brokerProxy.cut();
    await running.until('the channel to close', () => !consumer.broker.channelOpen);
    brokerProxy.restore();
    await running.until('reconnected to the broker', () => consumer.broker.channelOpen, 60_000);
    await running.until('the void deliveries dropped from memory', () => consumer.writer.inHand === 0);
    const paused = await queueState(running.queue);
    assert.equal(consumer.broker.consuming, false);
    assert.equal(paused.consumerCount, 0, 'no consumer while the database is down');
    assert.equal(paused.messageCount, 15, 'every message back in the queue, ready');

    databaseProxy.restore();
    await running.until('all 15 stored', async () => (await running.ids()).length === 15, 60_000);
    assert.deepEqual(await running.ids(), range(0, 15));
    await running.until('the queue drained', async () => (await queueState(running.queue)).messageCount === 0);
    assert.equal((await queueState(deadLetterQueueName(running.queue))).messageCount, 0);
  });

  test('stop writes and acks the partial batch in hand before closing the channel', async (t) => {
    const running = await start(t, {}, { BATCH_MAX_WAIT_MS: '60000' });
    await running.publish(event('last'), { messageId: 'last' });
    await running.until('the delivery in hand', () => running.consumer.writer.inHand === 1);
    assert.deepEqual(await running.ids(), [], 'the batch waits for more');
    await running.consumer.stop();
    assert.deepEqual(await running.ids(), ['last']);
    assert.equal(running.consumer.broker.channelOpen, false);
    const state = await queueState(running.queue);
    assert.deepEqual([state.messageCount, state.consumerCount], [0, 0], 'acked before the channel closed, so not requeued');
  });

  test('backs off its reconnects while the broker refuses basic.consume (ACCESS_REFUSED), then consumes once allowed', { timeout: 30_000 }, async (t) => {
    const queue = uniqueName('refused');
    const topology = testTopology(queue, { queueType: 'classic' });
    // A classic queue with an exclusive consumer: the broker refuses every other basic.consume with
    // 403 ACCESS_REFUSED and closes that channel, while connections and declarations succeed.
    const holder = await amqp.connect(serviceUrl('RABBITMQ_URL'));
    const held = await holder.createChannel();
    await assertTopology(held, topology);
    const { consumerTag } = await held.consume(queue, () => {}, { exclusive: true });
    const { logger, lines } = memoryLogger();
    const broker = new Broker({
      nodes: loadConfig({ RABBITMQ_URL: serviceUrl('RABBITMQ_URL'), DATABASE_URL: 'mongodb://unused/db' }).brokerNodes,
      heartbeatSeconds: 5,
      prefetch: 10,
      topology,
      retry: { baseMs: 50, maxMs: 1_000 },
      logger,
      canConsume: () => true,
      onDelivery: () => {},
    });
    t.after(async () => {
      await broker.close();
      await holder.close().catch(() => {});
      await deleteTopology(queue);
    });
    broker.start();
    // The measurement window: how many sessions it opens in 3 s of refusals.
    await new Promise((done) => setTimeout(done, 3_000));
    const sessions = lines.filter((line) => line.msg === 'connected to the broker').length;
    // Without back-off (it used to reset at every connect) this was one session every 25-50 ms.
    assert.ok(sessions >= 2 && sessions <= 8, `${sessions} sessions in 3 s`);
    assert.equal(broker.consuming, false);

    await held.cancel(consumerTag);
    await waitFor('consuming once the broker allows it', () => broker.consuming, 10_000);
  });

  // A SIGTERM that lands while the broker connection is being opened used to wait out the whole
  // SHUTDOWN_TIMEOUT_MS and exit 1: close() missed the session that the connect then opened.
  test('close() made while connecting closes the connection that connect then opens', { timeout: 15_000 }, async (t) => {
    const queue = uniqueName('closing');
    // Through a proxy, so that closing it ends whatever connection a regression leaves open.
    const proxy = await TcpProxy.start(serviceUrl('RABBITMQ_URL'));
    t.after(async () => {
      await proxy.close();
      await deleteTopology(queue);
    });
    const { logger, lines } = memoryLogger();
    const broker = new Broker({
      nodes: loadConfig({ RABBITMQ_URL: proxy.urlFor(serviceUrl('RABBITMQ_URL')), DATABASE_URL: 'mongodb://unused/db' }).brokerNodes,
      heartbeatSeconds: 5,
      prefetch: 10,
      topology: testTopology(queue),
      retry: { baseMs: 50, maxMs: 500 },
      logger,
      canConsume: () => true,
      onDelivery: () => assert.fail('nothing was published'),
    });
    broker.start();
    await broker.close(); // amqp.connect is still in flight here
    const messages = lines.map((line) => line.msg);
    const connected = messages.indexOf('connected to the broker');
    assert.ok(connected >= 0 && connected < messages.indexOf('broker channel closed'), messages.join(', '));
    assert.equal(broker.channelOpen, false);
    assert.equal((await queueState(queue)).consumerCount, 0);
  });
});
