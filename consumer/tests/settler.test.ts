import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createConsumerMetrics } from '../src/consumerMetrics.ts';
import { REJECTED_AT_HEADER, REJECTION_REASON_HEADER } from '@event-tracker/common/broker/deadLetters.ts';
import { Settler, type FinalVerdict } from '../src/services/settler.ts';
import { rejection } from '../src/services/verdict.ts';
import { FakeChannel, FakeClock, deliverEvent, memoryLogger, settle } from './fakes.ts';

// verdict.ts types its STORED and DUPLICATE constants as any Verdict; settle() takes final ones only.
const STORED: FinalVerdict = { verdict: 'stored' };
const DUPLICATE: FinalVerdict = { verdict: 'duplicate' };

function setup() {
  const clock = new FakeClock();
  const channel = new FakeChannel();
  const metrics = createConsumerMetrics();
  const { logger, lines } = memoryLogger();
  const settler = new Settler({ clock, logger, metrics });
  return { clock, channel, metrics, lines, settler };
}

describe('Settler', () => {
  test('acks a stored delivery and a duplicate at once, counting each', () => {
    const { channel, metrics, settler } = setup();
    settler.settle(deliverEvent(channel, 'a'), STORED);
    settler.settle(deliverEvent(channel, 'b'), DUPLICATE);
    assert.deepEqual(channel.ackedIds, ['a', 'b']);
    assert.equal(metrics.stored.get(), 1);
    assert.equal(metrics.duplicates.get(), 1);
    assert.equal(settler.pending, 0);
  });

  test('copies a rejected delivery to the dead-letter queue with its reason and the clock time, and acks it only once the copy is confirmed', async () => {
    const { clock, channel, settler } = setup();
    const release = channel.holdConfirms();
    const delivery = deliverEvent(channel, 'bad');
    settler.settle(delivery, rejection('contract', 'userId must not be blank'));
    await settle();

    assert.equal(channel.deadLettered.length, 1);
    assert.equal(channel.deadLettered[0]!.message, delivery.message, 'the original message, body and properties, is what is copied');
    assert.deepEqual(channel.deadLettered[0]!.headers, {
      [REJECTION_REASON_HEADER]: 'userId must not be blank',
      [REJECTED_AT_HEADER]: new Date(clock.now()).toISOString(),
    });
    assert.equal(channel.acked.length, 0, 'not acked while the copy is unconfirmed');

    release();
    await settle();
    assert.deepEqual(channel.ackedIds, ['bad']);
    assert.equal(channel.nacked.length, 0);
  });

  test('never acks a rejected delivery whose copy the broker did not confirm: nacks it with requeue instead', async () => {
    const { channel, metrics, lines, settler } = setup();
    channel.failDeadLetters = true;
    settler.settle(deliverEvent(channel, 'bad'), rejection('refused', 'The database refused the document (code 121): Document failed validation'));
    await settle();
    assert.equal(channel.acked.length, 0);
    assert.deepEqual(channel.nacked.map(({ message, requeue }) => [message.properties.messageId, requeue]), [['bad', true]]);
    assert.equal(metrics.deadLettered.get({ cause: 'refused' }), 0, 'not counted as dead-lettered');
    assert.ok(lines.some((line) => line.msg === 'dead-lettering was not confirmed; requeueing the message' && line.messageId === 'bad'));
  });

  test('treats a dead-letter publish that throws like an unconfirmed one', async () => {
    const { channel, settler } = setup();
    channel.deadLetter = () => Promise.reject(new Error('channel closing'));
    settler.settle(deliverEvent(channel, 'bad'), rejection('contract', 'payload is required'));
    await settle();
    assert.equal(channel.acked.length, 0);
    assert.deepEqual(channel.nacked.map(({ requeue }) => requeue), [true]);
    assert.equal(settler.pending, 0);
  });

  test('does nothing with a delivery whose channel has closed: the broker has requeued it', async () => {
    const { channel, metrics, settler } = setup();
    const stored = deliverEvent(channel, 'a');
    const rejected = deliverEvent(channel, 'bad');
    channel.open = false;
    settler.settle(stored, STORED);
    settler.settle(rejected, rejection('contract', 'payload is required'));
    await settle();
    assert.deepEqual(channel.closedCalls, [], 'no ack, nack or dead-letter copy on a closed channel');
    assert.equal(settler.pending, 0);
    assert.equal(metrics.deadLettered.get({ cause: 'contract' }), 0);
  });

  test('neither acks nor nacks a rejected delivery whose channel closed while its copy awaited the confirm', async () => {
    const { channel, settler } = setup();
    const release = channel.holdConfirms();
    settler.settle(deliverEvent(channel, 'bad'), rejection('unparseable', 'The body is empty'));
    await settle();
    channel.open = false;
    release();
    await settler.idle();
    assert.equal(channel.deadLettered.length, 1);
    assert.deepEqual(channel.closedCalls, []);
    assert.equal(channel.acked.length + channel.nacked.length, 0);
  });

  test('counts copies awaiting their confirm in pending, and idle() resolves once every one is settled', async () => {
    const { channel, settler } = setup();
    const release = channel.holdConfirms();
    settler.settle(deliverEvent(channel, 'x'), rejection('contract', 'userId is required'));
    settler.settle(deliverEvent(channel, 'y'), rejection('unencodable', 'The driver cannot encode the document'));
    settler.settle(deliverEvent(channel, 'ok'), STORED);
    assert.equal(settler.pending, 2, 'the stored delivery is acked at once, not pending');

    let idle = false;
    const waiting = settler.idle().then(() => (idle = true));
    await settle();
    assert.equal(idle, false, 'idle() waits for the held confirms');

    release();
    await waiting;
    assert.equal(settler.pending, 0);
    assert.deepEqual(channel.ackedIds, ['ok', 'x', 'y']);
  });

  test('idle() resolves at once when nothing is pending', async () => {
    const { settler } = setup();
    await settler.idle();
    assert.equal(settler.pending, 0);
  });

  test('counts dead-lettered messages labelled by cause', async () => {
    const { channel, metrics, settler } = setup();
    settler.settle(deliverEvent(channel, 'a'), rejection('unparseable', 'The body is empty'));
    settler.settle(deliverEvent(channel, 'b'), rejection('contract', 'userId is required'));
    settler.settle(deliverEvent(channel, 'c'), rejection('contract', 'eventType is required'));
    settler.settle(deliverEvent(channel, 'd'), rejection('unencodable', 'The driver cannot encode the document'));
    settler.settle(deliverEvent(channel, 'e'), rejection('refused', 'The database refused the document (code 2)'));
    await settler.idle();
    const counts = Object.fromEntries((['unparseable', 'contract', 'unencodable', 'refused'] as const).map((cause) => [cause, metrics.deadLettered.get({ cause })]));
    assert.deepEqual(counts, { unparseable: 1, contract: 2, unencodable: 1, refused: 1 });
    assert.equal(metrics.deadLettered.get(), 0, 'no unlabelled series');
    assert.match(metrics.registry.render(), /^consumer_messages_dead_lettered_total\{cause="contract"\} 2$/m);
  });

  test('logs the cause and message id of a rejection, never its reason or the body', async () => {
    const { channel, lines, settler } = setup();
    const delivery = channel.deliver('{"secret": "card-4111", ', { messageId: 'bad-1' });
    settler.settle(delivery, rejection('unparseable', 'The body is not valid JSON: secret key-4242'));
    await settler.idle();
    const line = lines.find((entry) => entry.msg === 'message rejected to the dead-letter queue');
    assert.equal(line?.cause, 'unparseable');
    assert.equal(line.messageId, 'bad-1');
    assert.doesNotMatch(JSON.stringify(lines), /card-4111|key-4242/);
  });
});
