// Gate for integration tests: they run against the real RabbitMQ and MongoDB-protocol
// server named by RABBITMQ_URL and DATABASE_URL. Unset, they are skipped with one line
// saying how to enable them; with REQUIRE_SERVICES=1 a missing variable fails the run.
import amqp from 'amqplib';

export type ServiceVar = 'RABBITMQ_URL' | 'DATABASE_URL';

const HOW = 'set RABBITMQ_URL and DATABASE_URL (and REQUIRE_SERVICES=1 to fail instead of skip); see README "Testing"';

/** Returns `false` when every variable is set, else the skip reason; throws under REQUIRE_SERVICES=1. */
export function servicesMissing(...vars: ServiceVar[]): string | false {
  const missing = vars.filter((name) => !process.env[name]);
  if (missing.length === 0) return false;
  const reason = `integration tests skipped: ${missing.join(', ')} unset; ${HOW}`;
  if (process.env.REQUIRE_SERVICES === '1') throw new Error(`REQUIRE_SERVICES=1 but ${reason}`);
  return reason;
}

export function serviceUrl(name: ServiceVar): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** A name no other test run uses, for queues and databases. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Deletes `queues` over a connection of its own, closed whatever happens: a cleanup that reused a
 * test's channel would fail, and leave that connection holding the test process open, whenever the
 * test had lost it.
 */
export async function deleteQueues(...queues: string[]): Promise<void> {
  const connection = await amqp.connect(serviceUrl('RABBITMQ_URL'));
  try {
    const channel = await connection.createChannel();
    for (const queue of queues) await channel.deleteQueue(queue);
  } finally {
    await connection.close().catch(() => {});
  }
}
