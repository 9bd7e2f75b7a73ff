import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { QueueMessage } from '@event-tracker/shared';
import { AppError, PublishOutcomeUnknown, QueueUnavailable } from '../src/errors.ts';
import { ConfirmPublisher } from '../src/publisher.ts';
import { FakeChannel } from './helpers.ts';

const MESSAGE: QueueMessage = {
  id: '0b9f4c4e-3c1a-4e55-9a53-5a1f6d1f2b7e',
  userId: 'u1',
  eventType: 'user_login',
  timestamp: '2023-10-27T10:00:00Z',
  payload: { device: 'desktop' },
};
const RECEIVED_AT = new Date('2024-01-01T00:00:01.500Z');

function attached(options: { publishTimeoutMs?: number; maxUnconfirmed?: number } = {}) {
  // Deadlines read Date.now, which a test's mocked timers move with setTimeout.
  const publisher = new ConfirmPublisher({ exchange: 'events', partitions: 1, publishTimeoutMs: 5_000, maxUnconfirmed: 100, now: () => Date.now(), ...options });
  const channel = new FakeChannel();
  publisher.attach(channel);
  return { publisher, channel };
}

/** Nothing was queued: the broker never got the event, or refused it. */
async function rejectsUnavailable(promise: Promise<void>, detail: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => error instanceof QueueUnavailable && detail.test(error.message) && error.id === MESSAGE.id);
}

/** Sent but never confirmed: the broker may hold the event. */
async function rejectsUnknown(promise: Promise<void>, detail: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => error instanceof PublishOutcomeUnknown && detail.test(error.message) && error.id === MESSAGE.id);
}

describe('ConfirmPublisher', () => {
  test('sends the event persistent and mandatory, with its id, receive time and JSON body', async () => {
    const { publisher, channel } = attached();
    const published = publisher.publish(MESSAGE, RECEIVED_AT);
    channel.ack();
    await published;
    const [sent] = channel.sent;
    assert.equal(sent!.exchange, 'events');
    assert.equal(sent!.routingKey, MESSAGE.eventType, 'the event type routes it');
    assert.deepEqual(JSON.parse(sent!.content.toString()), { ...MESSAGE, receivedAt: '2024-01-01T00:00:01.500Z' });
    assert.deepEqual(sent!.options, {
      persistent: true,
      mandatory: true,
      contentType: 'application/json',
      messageId: MESSAGE.id,
      timestamp: 1704067201,
    });
  });

  test('resolves once the broker confirms', async () => {
    const { publisher, channel } = attached();
    const published = publisher.publish(MESSAGE, RECEIVED_AT);
    channel.ack();
    await published;
    assert.equal(publisher.unconfirmed, 0);
  });

  test('tells the broker connection of a nack (it opens a new channel), not of a lost confirm', async () => {
    const publisher = new ConfirmPublisher({ exchange: 'events', partitions: 1, publishTimeoutMs: 5_000, maxUnconfirmed: 100 });
    const channel = new FakeChannel();
    let nacks = 0;
    publisher.attach(channel, () => {}, () => nacks++);
    const refused = publisher.publish(MESSAGE, RECEIVED_AT);
    channel.nack();
    await rejectsUnavailable(refused, /refused the event/);
    const cut = publisher.publish(MESSAGE, RECEIVED_AT);
    channel.close();
    await rejectsUnknown(cut, /connection was lost before it confirmed/);
    assert.equal(nacks, 1);
  });

  test('rejects with QueueUnavailable when the broker nacks: it refused the event', async () => {
    const { publisher, channel } = attached();
    const published = publisher.publish(MESSAGE, RECEIVED_AT);
    channel.nack();
    await rejectsUnavailable(published, /the broker refused the event/);
  });

  test('fails a confirmed message that the broker returned first as unroutable', async () => {
    const { publisher, channel } = attached();
    const published = publisher.publish(MESSAGE, RECEIVED_AT);
    channel.returnMessage();
    channel.ack();
    await rejectsUnavailable(published, /no queue took the event/);
  });

  test('a return fails only the publishes with that messageId', async () => {
    const { publisher, channel } = attached();
    const returned = publisher.publish(MESSAGE, RECEIVED_AT);
    const other = publisher.publish({ ...MESSAGE, id: 'a5c4c3d2-0000-4000-8000-000000000001' }, RECEIVED_AT);
    channel.returnMessage(0);
    channel.ack(1);
    channel.ack(0);
    await other;
    await rejectsUnavailable(returned, /no queue took the event/);
  });

  test('a return on a channel left behind does not fail a publish of that id on the next channel', async () => {
    const { publisher, channel } = attached();
    void publisher.publish(MESSAGE, RECEIVED_AT).catch(() => {});
    channel.returnMessage();
    const next = new FakeChannel();
    publisher.attach(next);
    const published = publisher.publish(MESSAGE, RECEIVED_AT);
    next.ack();
    await published;
  });

  test('rejects with PublishOutcomeUnknown when no confirm arrives within the publish timeout, and a late confirm changes nothing', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const { publisher, channel } = attached({ publishTimeoutMs: 250 });
    const published = publisher.publish(MESSAGE, RECEIVED_AT);
    t.mock.timers.tick(250);
    await rejectsUnknown(published, /no broker confirm within 250 ms/);
    assert.equal(publisher.unconfirmed, 1, 'still counted: the channel still holds it');
    channel.ack();
    assert.equal(publisher.unconfirmed, 0);
  });

  test('fails every pending publish as of unknown outcome when the channel closes, and later ones at once as unavailable', async () => {
    const { publisher, channel } = attached();
    const pending = publisher.publish(MESSAGE, RECEIVED_AT);
    channel.close();
    await rejectsUnknown(pending, /connection was lost before it confirmed/);
    assert.equal(publisher.isReady(), false);
    await rejectsUnavailable(publisher.publish(MESSAGE, RECEIVED_AT), /connection is down/);
  });

  test('is not ready and refuses at once before any channel is attached', async () => {
    const publisher = new ConfirmPublisher({ exchange: 'events', partitions: 1, publishTimeoutMs: 5_000, maxUnconfirmed: 100 });
    assert.equal(publisher.isReady(), false);
    await rejectsUnavailable(publisher.publish(MESSAGE, RECEIVED_AT), /connection is down/);
  });

  test('refuses at once while the broker blocks publishers, and publishes again once unblocked', async () => {
    const { publisher, channel } = attached();
    publisher.setBlocked(true);
    assert.equal(publisher.isReady(), false);
    await rejectsUnavailable(publisher.publish(MESSAGE, RECEIVED_AT), /resource alarm/);
    assert.equal(channel.sent.length, 0);
    publisher.setBlocked(false);
    const published = publisher.publish(MESSAGE, RECEIVED_AT);
    channel.ack();
    await published;
  });

  test('refuses beyond maxUnconfirmed instead of buffering', async () => {
    const { publisher, channel } = attached({ maxUnconfirmed: 2 });
    const first = publisher.publish(MESSAGE, RECEIVED_AT);
    const second = publisher.publish(MESSAGE, RECEIVED_AT);
    await rejectsUnavailable(publisher.publish(MESSAGE, RECEIVED_AT), /too many events/);
    channel.ack(0);
    channel.ack(1);
    await Promise.all([first, second]);
    const third = publisher.publish(MESSAGE, RECEIVED_AT);
    channel.ack(2);
    await third;
  });

  test('after a full write buffer, holds new publishes until the channel drains', async () => {
    const { publisher, channel } = attached();
    channel.writable = false;
    const first = publisher.publish(MESSAGE, RECEIVED_AT);
    const held = publisher.publish(MESSAGE, RECEIVED_AT);
    assert.equal(channel.sent.length, 1, 'the second publish waits');
    channel.writable = true;
    channel.emit('drain');
    assert.equal(channel.sent.length, 2);
    channel.ack(0);
    channel.ack(1);
    await Promise.all([first, held]);
  });

  test('a publish held for drain still ends within the publish timeout, as unavailable since it was never sent', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const { publisher, channel } = attached({ publishTimeoutMs: 100 });
    channel.writable = false;
    const sent = publisher.publish(MESSAGE, RECEIVED_AT);
    const held = publisher.publish(MESSAGE, RECEIVED_AT);
    t.mock.timers.tick(100);
    await rejectsUnknown(sent, /no broker confirm within 100 ms/);
    await rejectsUnavailable(held, /had no room for it within 100 ms/);
    channel.emit('drain');
    assert.equal(channel.sent.length, 1, 'a timed-out publish is never sent');
    assert.equal(publisher.unconfirmed, 1);
  });

  test('fails publishes held for drain when the channel closes', async () => {
    const { publisher, channel } = attached();
    channel.writable = false;
    const first = publisher.publish(MESSAGE, RECEIVED_AT);
    const held = publisher.publish(MESSAGE, RECEIVED_AT);
    channel.close();
    await rejectsUnknown(first, /connection was lost before it confirmed/);
    await rejectsUnavailable(held, /connection was lost/);
    assert.equal(publisher.unconfirmed, 0);
  });

  test('turns a synchronous throw from a closing channel into QueueUnavailable', async () => {
    const { publisher, channel } = attached();
    channel.throwOnSend = new Error('Channel closing');
    await rejectsUnavailable(publisher.publish(MESSAGE, RECEIVED_AT), /channel is closing/);
    assert.equal(publisher.unconfirmed, 0);
  });

  test('a new channel replaces the old one and clears the blocked state', async () => {
    const { publisher, channel } = attached();
    publisher.setBlocked(true);
    channel.close();
    const next = new FakeChannel();
    publisher.attach(next);
    assert.equal(publisher.isReady(), true);
    channel.emit('close');
    assert.equal(publisher.isReady(), true, 'a late close of the old channel does not detach the new one');
  });
});

describe('ConfirmPublisher.publishAll', () => {
  const batch = (count: number): QueueMessage[] => Array.from({ length: count }, (_, i) => ({ ...MESSAGE, id: `a5c4c3d2-0000-4000-8000-00000000000${i}` }));

  test('resolves once every message of the batch is confirmed, each sent as its own message', async () => {
    const { publisher, channel } = attached();
    const published = publisher.publishAll(batch(3), RECEIVED_AT);
    assert.equal(channel.sent.length, 3, 'all three in flight at once');
    channel.ack(2);
    channel.ack(0);
    channel.ack(1);
    await published;
  });

  test('refuses a batch that cannot fit under maxUnconfirmed before sending any of it', async () => {
    const { publisher, channel } = attached({ maxUnconfirmed: 4 });
    void publisher.publish(MESSAGE, RECEIVED_AT).catch(() => {});
    await assert.rejects(publisher.publishAll(batch(4), RECEIVED_AT), (error: unknown) => {
      assert.ok(error instanceof AppError && error.code === 'queue-unavailable');
      assert.deepEqual(error.ids, batch(4).map((message) => message.id));
      return true;
    });
    assert.equal(channel.sent.length, 1, 'only the earlier single publish was sent');
  });

  test('fails the batch with every id, as not accepted when the broker refused part of it', async () => {
    const { publisher, channel } = attached();
    const published = publisher.publishAll(batch(3), RECEIVED_AT);
    channel.ack(0);
    channel.nack(1);
    channel.ack(2);
    await assert.rejects(published, (error: unknown) => error instanceof AppError && error.code === 'queue-unavailable' && error.ids?.length === 3);
  });

  test('fails the batch as of unknown outcome when any confirm was lost with the channel', async () => {
    const { publisher, channel } = attached();
    const published = publisher.publishAll(batch(3), RECEIVED_AT);
    channel.nack(0);
    channel.close();
    await assert.rejects(published, (error: unknown) => error instanceof AppError && error.code === 'publish-outcome-unknown' && error.ids?.length === 3);
  });
});
