import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import amqp from 'amqplib';
import { servicesMissing, serviceUrl, uniqueName } from '../../tests/support/services.ts';

describe('RabbitMQ smoke', { skip: servicesMissing('RABBITMQ_URL') }, () => {
  test('declares a queue and round-trips a confirmed message', async () => {
    const connection = await amqp.connect(serviceUrl('RABBITMQ_URL'));
    try {
      const channel = await connection.createConfirmChannel();
      const queue = uniqueName('smoke');
      await channel.assertQueue(queue, { exclusive: true });
      channel.sendToQueue(queue, Buffer.from('{"hello":"world"}'), { messageId: 'm-1' });
      await channel.waitForConfirms();
      const message = await channel.get(queue, { noAck: true });
      assert.ok(message, 'the queue should hold the message');
      assert.equal(message.content.toString(), '{"hello":"world"}');
      assert.equal(message.properties.messageId, 'm-1');
    } finally {
      await connection.close();
    }
  });
});
