// What every peer shares with the bare baseline: one confirm channel on RabbitMQ, and a publish
// that resolves once the broker confirms. The queue arguments come from the bench driver, which
// takes them from the API's own topology (common/src/broker/topology.ts), so every server writes to the
// same kind of queue. Plain JavaScript: the peers run on Node as their users run them.
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';

const { RABBITMQ_URL: url, QUEUE_NAME: queue, QUEUE_ARGUMENTS: queueArguments } = process.env;
if (!url || !queue || !queueArguments) throw new Error('RABBITMQ_URL, QUEUE_NAME and QUEUE_ARGUMENTS are required');

const connection = await amqp.connect(url);
const channel = await connection.createConfirmChannel();
await channel.assertQueue(queue, { durable: true, arguments: JSON.parse(queueArguments) });

/** Publishes a validated event as the API does: with an id, persistent, mandatory, confirmed. */
export function publishEvent(event) {
  const id = event.id ?? randomUUID();
  const content = Buffer.from(JSON.stringify({ ...event, id }));
  const options = { persistent: true, mandatory: true, contentType: 'application/json', messageId: id };
  return new Promise((resolve, reject) => {
    channel.sendToQueue(queue, content, options, (err) => (err ? reject(err) : resolve(id)));
  });
}

export const port = Number(process.env.API_PORT ?? 0);

/** The line bench/support's startCommand waits for. */
export function announce(address) {
  console.log(JSON.stringify({ msg: 'listening', port: address.port }));
}

export function closeOnSigterm(close) {
  process.on('SIGTERM', () => void close().then(() => connection.close()).then(() => process.exit(0)));
}
