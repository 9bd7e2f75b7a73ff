// Upgrading onto queues an earlier release declared: against the real RabbitMQ.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import amqp from 'amqplib';
import { declareTopology } from '../src/broker/topology.ts';
import { createLogger } from '../src/logger.ts';
import { deleteTopology, servicesMissing, serviceUrl, testTopology, uniqueName } from '../../tests/support/services.ts';

test('declareTopology uses a queue an earlier release declared (no replicas argument, no exchange) as it is, warns once per queue, and binds it to the events exchange', { skip: servicesMissing('RABBITMQ_URL') }, async (t) => {
  const queue = uniqueName('upgrade');
  t.after(() => deleteTopology(queue));
  const connection = await amqp.connect(serviceUrl('RABBITMQ_URL'));
  t.after(() => connection.close());
  const channel = await connection.createConfirmChannel();
  // As the release before the exchange declared them.
  await channel.assertQueue(`${queue}.dead`, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await channel.assertQueue(queue, {
    durable: true,
    arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 10, 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish', 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': `${queue}.dead` },
  });
  channel.sendToQueue(queue, Buffer.from('queued before the upgrade'), { persistent: true });
  await channel.waitForConfirms();

  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({}, { write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  await declareTopology(connection, testTopology(queue, { replicas: 3 }), logger);

  const warned = lines.filter((line) => line.msg === 'queue exists with other arguments than configured; using it as it is');
  assert.deepEqual(warned.map((line) => line.queue), [`${queue}.dead`, queue]);
  assert.match(String(warned[1]!.broker), /PRECONDITION_FAILED - inequivalent arg 'x-quorum-initial-group-size'/);
  // Still the same queue, message and all, and now bound to the exchange.
  channel.publish(queue, 'page_view', Buffer.from('published after'), { persistent: true, mandatory: true });
  await channel.waitForConfirms();
  assert.equal((await channel.checkQueue(queue)).messageCount, 2);
});
