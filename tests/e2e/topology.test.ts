// The broker topology end to end, on real processes: a downstream queue bound to EVENTS_EXCHANGE gets
// exactly the events of its binding while the store still gets all; with QUEUE_PARTITIONS=3 every
// user's events sit in one partition, each event is stored once, and a poison message in one
// partition is dead-lettered to that partition's .dead without stopping the others.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import type { ActivityEvent } from '@event-tracker/shared';
import { partitionOf } from '@event-tracker/common/broker/topology.ts';
import { servicesMissing, serviceUrl } from '../support/services.ts';
import { runtimeMissing, selectedRuntimes, waitFor } from '../support/processes.ts';
import { clientFor, event, TestSystem } from '../support/system.ts';

const PARTITIONS = 3;

/** Every message in `queue` now, read and put back (nack with requeue). */
async function peek(channel: amqp.Channel, queue: string): Promise<amqp.GetMessage[]> {
  const messages: amqp.GetMessage[] = [];
  for (let message = await channel.get(queue); message !== false; message = await channel.get(queue)) messages.push(message);
  if (messages.length > 0) channel.nack(messages.at(-1)!, true, true);
  return messages;
}

function idsOf(messages: readonly amqp.GetMessage[]): string[] {
  return messages.map((message) => String(message.properties.messageId)).sort();
}

/** Posts each event from its own address, in turns of ten, and requires a 202 for every one. */
async function postAll(system: TestSystem, events: readonly ActivityEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 10) {
    const answers = await Promise.all(events.slice(i, i + 10).map((body, j) => system.post(body, clientFor(i + j, events.length))));
    assert.deepEqual(new Set(answers.map((answer) => answer.status)), new Set([202]));
  }
}

for (const runtime of selectedRuntimes()) {
  describe(`topology on ${runtime}`, { skip: servicesMissing('RABBITMQ_URL', 'DATABASE_URL') || runtimeMissing(runtime) }, () => {
    let connection: amqp.ChannelModel;
    let channel: amqp.Channel;
    before(async () => {
      connection = await amqp.connect(serviceUrl('RABBITMQ_URL'));
      channel = await connection.createChannel();
    });
    after(() => connection.close());

    test('a queue bound to EVENTS_EXCHANGE gets exactly the events of its binding; the store gets all', async (t) => {
      const system = new TestSystem(runtime);
      t.after(() => system.stop());
      await system.startApi();
      // As OPERATIONS.md shows a downstream team: its own queue, bound to the exchange by event type.
      const purchases = `${system.queue}_purchases`;
      const pageViews = `${system.queue}_page_views`;
      t.after(async () => {
        await channel.deleteQueue(purchases);
        await channel.deleteQueue(pageViews);
      });
      await channel.assertQueue(purchases, { durable: true });
      await channel.bindQueue(purchases, system.queue, 'purchase');
      await channel.assertQueue(pageViews, { durable: true });
      await channel.bindQueue(pageViews, system.queue, 'page_view.#');

      const types = ['purchase', 'page_view', 'page_view.mobile', 'user_login', 'purchase.refund'];
      const events = Array.from({ length: 20 }, (_, i) => ({ ...event(i), eventType: types[i % types.length]! }));
      await postAll(system, events);
      const idsOfType = (...wanted: string[]) => events.filter((body) => wanted.includes(body.eventType)).map((body) => body.id!).sort();
      assert.deepEqual(idsOf(await peek(channel, purchases)), idsOfType('purchase'));
      assert.deepEqual(idsOf(await peek(channel, pageViews)), idsOfType('page_view', 'page_view.mobile'));

      await system.startConsumer();
      await system.waitForStored(events.length);
      assert.equal(await system.activities.countDocuments(), events.length);
    });

    test(`with ${PARTITIONS} partitions each user's events sit in one partition and each event is stored once; a poison message is dead-lettered in its own partition`, async (t) => {
      const system = new TestSystem(runtime);
      system.overrides.QUEUE_PARTITIONS = String(PARTITIONS);
      t.after(() => system.stop());
      await system.startApi();
      const events = Array.from({ length: 60 }, (_, i) => event(i));
      await postAll(system, events);

      // Before any consumer: where the API put each event.
      const partitionOfId = new Map<string, number>();
      for (let partition = 0; partition < PARTITIONS; partition++) {
        for (const message of await peek(channel, `${system.queue}.${partition}`)) partitionOfId.set(String(message.properties.messageId), partition);
      }
      assert.equal(partitionOfId.size, events.length, 'every event is in exactly one partition');
      const usersByPartition = new Map<string, Set<number>>();
      for (const body of events) {
        const partition = partitionOfId.get(body.id!)!;
        assert.equal(partition, partitionOf(body.userId, PARTITIONS), `${body.userId} in its hashed partition`);
        usersByPartition.set(body.userId, (usersByPartition.get(body.userId) ?? new Set()).add(partition));
      }
      assert.ok([...usersByPartition.values()].every((partitions) => partitions.size === 1), 'one partition per user');
      assert.equal(new Set(partitionOfId.values()).size, PARTITIONS, 'the 17 users spread over every partition');

      // A message no consumer can store, straight into partition 1, ahead of more good events.
      channel.sendToQueue(`${system.queue}.1`, Buffer.from('{"id":"poison",'), { persistent: true, messageId: 'poison' });
      await system.startConsumer();
      const more = Array.from({ length: 30 }, (_, i) => ({ ...event(i), id: randomUUID() }));
      await postAll(system, more);
      await system.waitForStored(events.length + more.length);
      await waitFor('the poison message in partition 1\'s dead-letter queue', async () => (await channel.checkQueue(`${system.queue}.1.dead`)).messageCount === 1, 15_000);
      const [letter] = await peek(channel, `${system.queue}.1.dead`);
      assert.match(String(letter!.properties.headers?.['x-rejection-reason']), /The body is not valid JSON/);
      for (const partition of [0, 2]) assert.equal((await channel.checkQueue(`${system.queue}.${partition}.dead`)).messageCount, 0);
      const stored = await system.activities.find({}, { projection: { _id: 1 } }).toArray();
      assert.equal(stored.length, events.length + more.length, 'each event stored once (documents counted, not ids)');
      assert.equal(new Set(stored.map((doc) => doc._id)).size, stored.length);
    });
  });
}
