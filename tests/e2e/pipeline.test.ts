// End to end: real API and consumer processes on each runtime, the real broker and database.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { servicesMissing } from '../support/services.ts';
import { runtimeMissing, selectedRuntimes, waitFor } from '../support/processes.ts';
import { clientFor, event, TestSystem, type Answer } from '../support/system.ts';

const EVENTS = Number(process.env.E2E_EVENTS ?? 300);
const CLIENTS = Math.ceil(EVENTS / 40); // stays under the 50-per-minute limit of each address

for (const runtime of selectedRuntimes()) {
  describe(`pipeline on ${runtime}`, { skip: servicesMissing('RABBITMQ_URL', 'DATABASE_URL') || runtimeMissing(runtime) }, () => {
    let system: TestSystem;
    before(async () => {
      system = new TestSystem(runtime);
      await Promise.all([system.startApi(), system.startConsumer()]);
    });
    after(() => system.stop());

    test(`stores each of ${EVENTS} accepted events exactly once with its fields, and nothing refused`, async () => {
      const sent = Array.from({ length: EVENTS }, (_, i) => event(i));
      const refusedIds: string[] = [];
      const answers: Answer[] = [];
      for (let i = 0; i < sent.length; i += 20) {
        const slice = sent.slice(i, i + 20).map((body, j) => {
          const index = i + j;
          // Every 10th event is invalid (no zone on the timestamp) and must be refused and never stored.
          if (index % 10 === 9) {
            refusedIds.push(body.id!);
            return system.post({ ...body, timestamp: '2023-10-27T10:00:00' }, clientFor(index, CLIENTS));
          }
          return system.post(body, clientFor(index, CLIENTS));
        });
        answers.push(...(await Promise.all(slice)));
      }

      const accepted = answers.filter((answer) => answer.status === 202);
      assert.equal(accepted.length, EVENTS - refusedIds.length, `statuses: ${answers.map((a) => a.status).join(',')}`);
      assert.ok(answers.every((answer) => answer.status === 202 || answer.status === 400));

      await system.waitForStored(accepted.length);
      const stored = await system.activities.find().toArray();
      assert.equal(stored.length, accepted.length, 'each accepted event stored once, nothing else');
      const byId = new Map(stored.map((doc) => [doc._id, doc]));
      for (const { id } of accepted) {
        const original = sent.find((body) => body.id === id)!;
        const doc = byId.get(id!);
        assert.ok(doc, `event ${id} stored`);
        assert.equal(doc.id, id);
        assert.equal(doc.userId, original.userId);
        assert.equal(doc.eventType, original.eventType);
        assert.equal(doc.timestamp.toISOString(), original.timestamp);
        assert.deepEqual(doc.payload, original.payload);
        assert.ok(doc.receivedAt instanceof Date && doc.processedAt instanceof Date);
      }
      for (const id of refusedIds) assert.equal(byId.has(id), false, `refused event ${id} must not be stored`);
    });

    test('stores one document when a client retries an event with the same id', async () => {
      const before = await system.activities.countDocuments();
      const body = event(1);
      const first = await system.post(body, '127.9.0.1');
      const retry = await system.post(body, '127.9.0.1');
      assert.deepEqual([first.status, retry.status], [202, 202]);
      assert.equal(first.id, retry.id);
      await system.waitForStored(before + 1);
      assert.equal(await system.activities.countDocuments({ _id: body.id! }), 1);
    });

    test('accepts the legacy snake_case contract on /api/v1/events/track', async () => {
      const answer = await system.post(
        { user_id: 42, event_type: 'login', timestamp: '2026-02-17T15:10:00Z', metadata: { ip: '127.0.0.1' } },
        '127.9.0.2',
        '/api/v1/events/track',
      );
      assert.equal(answer.status, 202);
      await waitFor('the legacy event to be stored', async () => (await system.activities.countDocuments({ _id: answer.id! })) === 1);
      const doc = await system.activities.findOne({ _id: answer.id! });
      assert.ok(doc, 'legacy event stored');
      assert.equal(doc.userId, '42');
      assert.equal(doc.eventType, 'login');
      assert.deepEqual(doc.payload, { ip: '127.0.0.1' });
    });
  });
}
