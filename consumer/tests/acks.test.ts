import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from 'amqplib';
import { Acks, type AckTarget } from '../src/acks.ts';
import { settle } from './fakes.ts';

/** What the broker is sent, in order: `ack 5+` is a multiple ack up to tag 5. */
function recording(): { target: AckTarget; sent: string[] } {
  const sent: string[] = [];
  const target: AckTarget = {
    ack: (message, allUpTo) => void sent.push(`ack ${message.fields.deliveryTag}${allUpTo ? '+' : ''}`),
    nack: (message, _allUpTo, requeue) => void sent.push(`nack ${message.fields.deliveryTag}${requeue ? ' requeue' : ''}`),
  };
  return { target, sent };
}

function deliveries(acks: Acks, count: number): Message[] {
  return Array.from({ length: count }, (_, i) => {
    const message = { fields: { deliveryTag: i + 1 }, properties: {}, content: Buffer.alloc(0) } as unknown as Message;
    acks.delivered(message);
    return message;
  });
}

describe('Acks', () => {
  test('sends the acks of one synchronous pass as one multiple ack, after the pass', async () => {
    const { target, sent } = recording();
    const acks = new Acks(target);
    const messages = deliveries(acks, 250);
    for (const message of messages) acks.ack(message);
    assert.deepEqual(sent, [], 'nothing sent within the pass');
    await settle();
    assert.deepEqual(sent, ['ack 250+']);
    assert.equal(acks.size, 0);
  });

  test('never folds a delivery still in hand into a multiple ack: those behind it are acked one by one', async () => {
    const { target, sent } = recording();
    const acks = new Acks(target);
    const messages = deliveries(acks, 6);
    // Tag 3 is in hand (its dead-letter copy unconfirmed, say).
    for (const message of messages) if (message.fields.deliveryTag !== 3) acks.ack(message);
    await settle();
    assert.deepEqual(sent, ['ack 2+', 'ack 4', 'ack 5', 'ack 6']);
    assert.equal(acks.size, 1, 'only tag 3 unsettled');

    acks.ack(messages[2]!);
    await settle();
    assert.deepEqual(sent.slice(4), ['ack 3+']);
    assert.equal(acks.size, 0);
  });

  test('waits for no ack to nack, and a nacked delivery does not hold back the acks after it', async () => {
    const { target, sent } = recording();
    const acks = new Acks(target);
    const messages = deliveries(acks, 4);
    acks.ack(messages[0]!);
    acks.nack(messages[1]!, true);
    acks.ack(messages[2]!);
    assert.deepEqual(sent, ['nack 2 requeue']);
    await settle();
    assert.deepEqual(sent, ['nack 2 requeue', 'ack 3+']);
    assert.equal(acks.size, 1, 'tag 4 still in hand');
  });

  test('acks a delivery it never saw on its own, at once, and ignores a second ack of the same delivery', async () => {
    const { target, sent } = recording();
    const acks = new Acks(target);
    const [first] = deliveries(acks, 1);
    const stranger = { fields: { deliveryTag: 9 }, properties: {}, content: Buffer.alloc(0) } as unknown as Message;
    acks.ack(stranger);
    acks.ack(first!);
    acks.ack(first!);
    await settle();
    assert.deepEqual(sent, ['ack 9', 'ack 1+']);
  });
});
