// Runs OPERATIONS.md's "Bind a downstream queue" example as it is written, against a live API on the
// real RabbitMQ, and checks the bound queue gets exactly the events of its binding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { root, startReady, stopService } from '../support/processes.ts';
import { deleteQueues, deleteTopology, serviceUrl, servicesMissing, uniqueName } from '../support/services.ts';

const run = promisify(execFile);
const skip = servicesMissing('RABBITMQ_URL');

/** The first js block of OPERATIONS.md's section `heading`, and the sh line that runs it. */
function documentedExample(heading: string): { script: string; command: string } {
  const document = readFileSync(join(root, 'OPERATIONS.md'), 'utf8');
  assert.ok(document.includes(`\n${heading}\n`), `OPERATIONS.md has no "${heading}" section`);
  const section = document.slice(document.indexOf(`\n${heading}\n`));
  const script = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  const command = /```sh\n([^\n]*node [^\n]*)\n```/.exec(section)?.[1];
  assert.ok(script && command, `OPERATIONS.md "${heading}" has a js example and the command that runs it`);
  return { script, command };
}

test('OPERATIONS.md: a queue bound to the events exchange as "Bind a downstream queue" shows gets exactly the purchase events', { skip }, async (t) => {
  const { script, command } = documentedExample('## Bind a downstream queue');
  const [assignment, , file] = command.split(' ');
  assert.match(assignment!, /^RABBITMQ_URL=amqp:\/\//);
  // The example's names, as the document gives them: the default EVENTS_EXCHANGE and its own queue.
  assert.match(script, /bindQueue\('purchases', 'activities', 'purchase'\)/);
  const queue = uniqueName('docs_bind');
  const path = join(root, file!);
  // The default exchange is left as it was found: deleted after the test only if the test made it.
  const exchangeExisted = await exchangeExists('activities');
  t.after(async () => {
    rmSync(path, { force: true });
    await deleteQueues('purchases');
    await deleteTopology(queue);
    if (!exchangeExisted) await deleteExchange('activities');
  });
  const api = await startReady('api', 'node20-tsx', { RABBITMQ_URL: serviceUrl('RABBITMQ_URL'), QUEUE_NAME: queue, API_HOST: '127.0.0.1', API_PORT: '0' });
  t.after(() => stopService(api));

  writeFileSync(path, script);
  await run('node', [file!], { cwd: root, env: { ...process.env, RABBITMQ_URL: serviceUrl('RABBITMQ_URL') }, timeout: 30_000 });

  const ids = { purchase: randomUUID(), page_view: randomUUID(), 'purchase.refund': randomUUID() };
  for (const [eventType, id] of Object.entries(ids)) {
    const response = await fetch(`http://127.0.0.1:${api.port}/api/v1/activities`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id, userId: 'u-1', eventType, timestamp: '2023-10-27T10:00:00Z', payload: {} }),
    });
    assert.equal(response.status, 202);
  }
  const connection = await amqp.connect(serviceUrl('RABBITMQ_URL'));
  try {
    const channel = await connection.createChannel();
    const got: string[] = [];
    for (let message = await channel.get('purchases', { noAck: true }); message !== false; message = await channel.get('purchases', { noAck: true })) {
      got.push(String(message.properties.messageId));
    }
    assert.deepEqual(got, [ids.purchase]);
    assert.equal((await channel.checkQueue(queue)).messageCount, 3, 'the stored stream still gets every event');
  } finally {
    await connection.close();
  }
});

/** Whether `name` is declared on the broker (a passive check fails, and closes its channel, when not). */
async function exchangeExists(name: string): Promise<boolean> {
  const connection = await amqp.connect(serviceUrl('RABBITMQ_URL'));
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    return await channel.checkExchange(name).then(
      () => true,
      () => false,
    );
  } finally {
    await connection.close().catch(() => {});
  }
}

async function deleteExchange(name: string): Promise<void> {
  const connection = await amqp.connect(serviceUrl('RABBITMQ_URL'));
  try {
    await (await connection.createChannel()).deleteExchange(name);
  } finally {
    await connection.close().catch(() => {});
  }
}
