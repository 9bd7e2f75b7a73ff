// What every peer shares: one confirm channel on RabbitMQ, and a publish that resolves once the
// broker confirms. The bench driver declares the API's own topology for it (common/src/broker/topology.ts:
// the topic exchange EVENTS_EXCHANGE bound to the quorum queue QUEUE_NAME), so every peer publishes
// as the API does: to the exchange, the event type as routing key, for the broker to route. Plain
// JavaScript: the peers run on Node as their users run them.
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';

const { RABBITMQ_URL: url, QUEUE_NAME: queue, QUEUE_ARGUMENTS: queueArguments, EVENTS_EXCHANGE: exchange } = process.env;
if (!url || !queue || !queueArguments || !exchange) throw new Error('RABBITMQ_URL, QUEUE_NAME, QUEUE_ARGUMENTS and EVENTS_EXCHANGE are required');

const connection = await amqp.connect(url);
const channel = await connection.createConfirmChannel();
await channel.assertQueue(queue, { durable: true, arguments: JSON.parse(queueArguments) });

/** Publishes a validated event as the API does: with an id, persistent, mandatory, routed by its type, confirmed. */
export function publishEvent(event) {
  const id = event.id ?? randomUUID();
  const content = Buffer.from(JSON.stringify({ ...event, id }));
  const options = { persistent: true, mandatory: true, contentType: 'application/json', messageId: id };
  return new Promise((resolve, reject) => {
    channel.publish(exchange, event.eventType, content, options, (err) => (err ? reject(err) : resolve(id)));
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
