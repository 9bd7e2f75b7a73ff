// The entry file as a real process, started the way README's scripts start it, on each runtime.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { MongoClient } from 'mongodb';
import { CLIENT_OPTIONS, COLLECTION } from '../src/activityStore.ts';
import { assertTopology, deadLetterQueueName } from '@event-tracker/common/broker/topology.ts';
import { deleteTopology, serviceUrl, servicesMissing, testTopology, uniqueName } from '../../tests/support/services.ts';
import { root, runtimeMissing, selectedRuntimes, startService, stopService, waitFor } from '../../tests/support/processes.ts';
import { event } from './fakes.ts';

test('exits 1 with one log line per bad variable when the configuration is invalid', () => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'consumer/src/worker.ts')], {
    cwd: root,
    env: { PATH: process.env.PATH, PREFETCH: 'lots' },
    encoding: 'utf8',
  });
  assert.equal(result.status, 1);
  const lines = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { level: number; msg: string });
  assert.deepEqual(
    lines.map((line) => [line.level, line.msg]),
    [
      [60, 'invalid configuration: RABBITMQ_URL is required (an amqp:// or amqps:// URL, or a comma-separated list of them)'],
      [60, 'invalid configuration: DATABASE_URL is required (a mongodb:// or mongodb+srv:// URL naming the database)'],
      [60, 'invalid configuration: PREFETCH must be an integer from 1 to 65535 (got "lots")'],
    ],
  );
});

describe('worker process', { skip: servicesMissing('RABBITMQ_URL', 'DATABASE_URL') }, () => {
  let publisher: ChannelModel;
  let channel: ConfirmChannel;
  let verifier: MongoClient;
  before(async () => {
    publisher = await amqp.connect(serviceUrl('RABBITMQ_URL'));
    channel = await publisher.createConfirmChannel();
    verifier = new MongoClient(serviceUrl('DATABASE_URL'), CLIENT_OPTIONS);
  });
  after(async () => {
    await publisher.close();
    await verifier.close();
  });

  for (const runtime of selectedRuntimes()) {
    test(`on ${runtime}: stores a published event, reports healthy, and exits 0 on SIGTERM`, { skip: runtimeMissing(runtime) }, async (t) => {
      const queue = uniqueName('worker');
      const database = uniqueName('worker');
      const databaseUrl = new URL(serviceUrl('DATABASE_URL'));
      databaseUrl.pathname = `/${database}`;
      const db = verifier.db(database);
      t.after(async () => {
        await db.dropDatabase();
        await deleteTopology(queue);
      });
      await assertTopology(channel, testTopology(queue));

      const worker = await startService('consumer', runtime, {
        RABBITMQ_URL: serviceUrl('RABBITMQ_URL'),
        DATABASE_URL: databaseUrl.toString(),
        QUEUE_NAME: queue,
        EVENTS_EXCHANGE: queue,
        HEALTH_HOST: '127.0.0.1',
        HEALTH_PORT: '0',
      });
      t.after(() => stopService(worker, 'SIGKILL'));

      channel.sendToQueue(queue, Buffer.from(JSON.stringify(event('from-worker'))), { messageId: 'from-worker', persistent: true });
      await channel.waitForConfirms();
      await waitFor('the document', async () => (await db.collection(COLLECTION).countDocuments({ _id: 'from-worker' as never })) === 1);

      const health = await fetch(`http://127.0.0.1:${worker.port}/health`);
      assert.equal(health.status, 200, worker.logs.join('\n'));
      assert.deepEqual(await health.json(), { status: 'ok', checks: { rabbitmq: 'up', mongodb: 'up' } });
      assert.match(await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text(), /^consumer_messages_stored_total 1$/m);

      assert.equal(await stopService(worker, 'SIGTERM'), 0, worker.logs.join('\n'));
      assert.ok(worker.logs.some((line) => line.includes('"msg":"stopped"')));
      assert.equal((await channel.checkQueue(queue)).messageCount, 0, 'acked before exit, nothing requeued');
    });
  }
});
