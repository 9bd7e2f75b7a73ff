// Batches end to end, on each runtime: a batch (plain and gzip) is stored exactly once; a batch the
// broker refuses is answered 503 with every id, and its retry with those ids stores each event once,
// those an earlier attempt got queued included.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { ProblemDetails } from '@event-tracker/shared';
import { brokerSideMissing } from '../support/brokerSide.ts';
import { servicesMissing } from '../support/services.ts';
import { runtimeMissing, selectedRuntimes, waitFor } from '../support/processes.ts';
import { event, TestSystem } from '../support/system.ts';

let requests = 0;

async function postBatch(system: TestSystem, body: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; ids: string[] }> {
  // A client address per request, so retries never meet the rate limit.
  requests += 1;
  const response = await fetch(`http://127.0.0.1:${system.api!.port}/api/v1/activities/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': `127.8.${requests >> 8}.${requests & 255}`, ...headers },
    body,
  });
  const answer = (await response.json()) as { ids?: string[] } & Partial<ProblemDetails>;
  return { status: response.status, ids: answer.ids ?? [] };
}

/**
 * A RabbitMQ policy capping the queue's length: with the queue's reject-publish overflow, the broker
 * nacks what does not fit. Policies apply asynchronously, so this waits until the queue shows it.
 */
async function capQueue(queue: string, length: number | undefined): Promise<void> {
  const policy = `cap_${queue}`;
  if (length === undefined) execFileSync('rabbitmqctl', ['-q', 'clear_policy', policy]);
  else execFileSync('rabbitmqctl', ['-q', 'set_policy', '--apply-to', 'queues', policy, `^${queue}$`, JSON.stringify({ 'max-length': length })]);
  const applied = () => execFileSync('rabbitmqctl', ['-q', 'list_queues', '--no-table-headers', 'name', 'policy'], { encoding: 'utf8' }).split('\n').some((line) => line === `${queue}\t${policy}`);
  await waitFor(`policy ${policy} ${length === undefined ? 'cleared' : 'applied'}`, () => applied() === (length !== undefined), 10_000);
}

for (const runtime of selectedRuntimes()) {
  describe(`batches on ${runtime}`, { skip: servicesMissing('RABBITMQ_URL', 'DATABASE_URL') || runtimeMissing(runtime) }, () => {
    let system: TestSystem;
    before(async () => {
      system = new TestSystem(runtime);
      await system.startApi();
    });
    after(() => system.stop());

    test('a batch the broker refuses is 503 with every id; retried with them, with part of it queued by an earlier batch, each event is stored once', { skip: brokerSideMissing() }, async () => {
      const batch = Array.from({ length: 10 }, (_, i) => event(i));
      // The first half goes through on its own: as if the broker had taken those of a batch that failed halfway.
      assert.equal((await postBatch(system, Buffer.from(JSON.stringify({ batch: batch.slice(0, 5) })))).status, 202);
      const body = Buffer.from(JSON.stringify({ batch }));
      await capQueue(system.queue, 5);
      try {
        // The broker applies a policy asynchronously: until it bites, the batch is accepted, which
        // only queues duplicates of the same ids (stored once all the same), and the queue fills.
        let refused = { status: 0, ids: [] as string[] };
        await waitFor('the capped queue to refuse the batch', async () => (refused = await postBatch(system, body)).status === 503, 10_000);
        assert.deepEqual(refused.ids, batch.map((e) => e.id), 'every id, in request order');
        // Measured on RabbitMQ 3.10: a quorum queue stays in its reject-publish state when its cap
        // is cleared, and leaves it at a delivery made while a higher cap applies.
        await capQueue(system.queue, 1_000);
        await system.startConsumer();
        await system.waitForStored(5, 30_000);
      } finally {
        await capQueue(system.queue, undefined);
      }
      await waitFor('the retry to be accepted', async () => (await postBatch(system, body)).status === 202, 30_000, () => system.api!.logs.slice(-30).join('\n'));
      await system.waitForStored(10, 30_000);
      const stored = await system.activities.find({}, { projection: { _id: 1 } }).toArray();
      assert.deepEqual(stored.map((doc) => doc._id).sort(), batch.map((e) => e.id!).sort(), 'each event stored once');
    });

    test('a plain batch and a gzip batch are stored exactly once, with their fields', async () => {
      system.consumer ?? (await system.startConsumer());
      const before = await system.activities.countDocuments();
      const plain = Array.from({ length: 100 }, (_, i) => ({ ...event(i), payload: { i, kind: 'plain' } }));
      const zipped = Array.from({ length: 50 }, (_, i) => ({ ...event(i, randomUUID()), payload: { i, kind: 'gzip' } }));
      const first = await postBatch(system, Buffer.from(JSON.stringify({ batch: plain })));
      const second = await postBatch(system, gzipSync(JSON.stringify({ batch: zipped })), { 'content-encoding': 'gzip' });
      assert.deepEqual([first.status, second.status], [202, 202]);
      await system.waitForStored(before + 150, 30_000);
      for (const [sent, ids] of [[plain, first.ids], [zipped, second.ids]] as const) {
        const docs = await system.activities.find({ _id: { $in: [...ids] } }).toArray();
        assert.equal(docs.length, sent.length);
        for (const doc of docs) {
          const original = sent[ids.indexOf(doc._id)]!;
          assert.deepEqual([doc.userId, doc.eventType, doc.payload], [original.userId, original.eventType, original.payload]);
        }
      }
      assert.equal(await system.activities.countDocuments(), before + 150, 'nothing twice');
    });
  });
}
