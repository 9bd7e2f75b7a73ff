// Messages that can never be stored, put straight on the queue in front of good events, and request
// lines no client should send to the health ports: the consumer (Node and Bun) stores the good
// events within seconds, dead-letters each poison message with its reason, stays healthy, and both
// services answer or close cleanly on any request line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import amqp from 'amqplib';
import { assertTopology } from '@event-tracker/common/broker/topology.ts';
import { servicesMissing, serviceUrl, testTopology } from '../support/services.ts';
import { runtimeMissing, selectedRuntimes, waitFor } from '../support/processes.ts';
import { TestSystem } from '../support/system.ts';

const GOOD_EVENTS = 20;

/** Request lines and headers no client should send; each must be answered or cleanly closed. */
const HOSTILE_REQUESTS = [
  'GET http://[ HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET * HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET http://host:99999999/health HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /%zz%00 HTTP/1.1\r\nHost: x\r\n\r\n',
  'BREW /health HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\n\r\n',
  'GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
  'GET /health HTTP/9.9\r\n\r\n',
  '\u0000\u0001\u0002 garbage\r\n\r\n',
  `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
];

/** Sends `raw` and resolves with the status line of the answer, or 'closed' if the server hung up first. */
function sendRaw(port: number, raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer and no close within 5 s for ${JSON.stringify(raw.slice(0, 40))}`));
    }, 5_000);
    const finish = (result: string) => {
      clearTimeout(guard);
      socket.destroy();
      resolve(result);
    };
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) finish(answer.slice(0, answer.indexOf('\r\n')));
    });
    socket.on('error', () => finish('closed'));
    socket.on('close', () => finish(answer === '' ? 'closed' : answer));
    socket.write(raw, 'latin1');
  });
}

/** FerretDB (CI) and MongoDB refuse different documents; each gets one it refuses per document. */
async function refusedPayload(system: TestSystem): Promise<{ payload: Record<string, unknown>; what: string }> {
  const info = await system.mongo.db().admin().command({ buildInfo: 1 });
  if ('ferretdbVersion' in info) return { payload: { matrix: [[1, 2], [3]] }, what: 'FerretDB refuses nested arrays (MongoDB stores them)' };
  // MongoDB stores anything the contract allows, so the test gives the collection a validator.
  await system.mongo.db().createCollection('activities', { validator: { 'payload.poison': { $exists: false } } });
  return { payload: { poison: true }, what: 'MongoDB refuses it by the collection validator' };
}

for (const runtime of selectedRuntimes()) {
  describe(`poison messages on ${runtime}`, { skip: servicesMissing('RABBITMQ_URL', 'DATABASE_URL') || runtimeMissing(runtime) }, () => {
    let system: TestSystem;
    let connection: amqp.ChannelModel;
    let channel: amqp.ConfirmChannel;
    before(async () => {
      system = new TestSystem(runtime);
      connection = await amqp.connect(serviceUrl('RABBITMQ_URL'));
      channel = await connection.createConfirmChannel();
      await assertTopology(channel, testTopology(system.queue));
    });
    after(async () => {
      await connection.close();
      await system.stop();
    });

    test('stores the good events behind a NUL-key document, a document the database refuses and unparseable JSON; dead-letters those three with their reasons; /health stays 200', async (t) => {
      const refused = await refusedPayload(system);
      t.diagnostic(`per-document refusal: ${refused.what}`);
      const poison = [
        { name: 'nul-key', content: Buffer.from(`{"id":"p-nul-key","userId":"u","eventType":"e","timestamp":"2023-10-27T10:00:00Z","payload":{"a\\u0000b":1}}`), cause: /keys must not contain NUL/ },
        { name: 'refused', content: Buffer.from(JSON.stringify({ id: 'p-refused', userId: 'u', eventType: 'e', timestamp: '2023-10-27T10:00:00Z', payload: refused.payload })), cause: /The database refused the document/ },
        { name: 'unparseable', content: Buffer.from('{"id":"p-unparseable",'), cause: /The body is not valid JSON/ },
      ];
      await system.startConsumer();
      await waitFor('the consumer to be ready', async () => (await system.consumerHealth()) === 200, 15_000);
      const statuses: number[] = [];
      let watching = true;
      const watcher = (async () => {
        // Sampled every 50 ms, for the whole test: a single 503 fails it.
        while (watching) {
          statuses.push(await system.consumerHealth());
          await new Promise((done) => setTimeout(done, 50));
        }
      })();
      try {
        for (const { name, content } of poison) channel.sendToQueue(system.queue, content, { persistent: true, messageId: `p-${name}`, contentType: 'application/json' });
        const good = Array.from({ length: GOOD_EVENTS }, (_, i) => ({ id: randomUUID(), userId: `u${i}`, eventType: 'page_view', timestamp: '2023-10-27T10:00:00Z', payload: { i } }));
        for (const event of good) channel.sendToQueue(system.queue, Buffer.from(JSON.stringify(event)), { persistent: true, messageId: event.id });
        await channel.waitForConfirms();

        await system.waitForStored(GOOD_EVENTS, 15_000);
        const dead: amqp.GetMessage[] = [];
        await waitFor('three dead letters', async () => {
          const message = await channel.get(`${system.queue}.dead`, { noAck: true });
          if (message !== false) dead.push(message);
          return dead.length >= poison.length;
        }, 15_000);
        for (const { name, cause } of poison) {
          const letter = dead.find((message) => message.properties.messageId === `p-${name}`);
          assert.ok(letter, `${name} is in ${system.queue}.dead`);
          assert.match(String(letter.properties.headers?.['x-rejection-reason']), cause, name);
          assert.ok(!Number.isNaN(Date.parse(String(letter.properties.headers?.['x-rejected-at']))), `${name} carries x-rejected-at`);
          assert.deepEqual(letter.content, poison.find((p) => p.name === name)!.content, `${name} is dead-lettered byte for byte`);
        }
        assert.equal(await system.activities.countDocuments(), GOOD_EVENTS, 'only the good events are stored');
        await waitFor('the main queue to be empty and acked', async () => (await channel.checkQueue(system.queue)).messageCount === 0, 10_000);
      } finally {
        watching = false;
        await watcher;
      }
      assert.ok(statuses.length > 0);
      assert.deepEqual(new Set(statuses), new Set([200]), `consumer /health answered ${[...new Set(statuses)].join(', ')}`);
    });

    test('both services answer or cleanly close on any request line, and stay up', async () => {
      const api = await system.startApi();
      const consumer = system.consumer ?? (await system.startConsumer());
      for (const service of [api, consumer]) {
        for (const raw of HOSTILE_REQUESTS) {
          const answer = await sendRaw(service.port, raw);
          assert.match(answer, /^(closed|HTTP\/1\.[01] [1-5]\d\d)/, `answer to ${JSON.stringify(raw.slice(0, 40))}: ${answer.slice(0, 80)}`);
        }
        assert.equal(service.child.exitCode, null, 'still running');
        const health = await fetch(`http://127.0.0.1:${service.port}/health`);
        assert.equal(health.status, 200);
      }
    });
  });
}
