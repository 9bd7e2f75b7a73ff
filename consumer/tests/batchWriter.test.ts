import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createConsumerMetrics } from '../src/consumerMetrics.ts';
import { BatchWriter } from '../src/services/batchWriter.ts';
import { REJECTION_REASON_HEADER } from '@event-tracker/common/broker/deadLetters.ts';
import { Settler } from '../src/services/settler.ts';
import { FakeChannel, FakeClock, FakeStore, activityOf, deliverEvent, event, memoryLogger, settle } from './fakes.ts';

const RETRY = { baseMs: 100, maxMs: 1_000 };
const WRITE_TIMEOUT_MS = 5_000;

function setup(options: { batchSize?: number; batchMaxWaitMs?: number } = {}) {
  const clock = new FakeClock();
  const store = new FakeStore();
  const channel = new FakeChannel();
  const metrics = createConsumerMetrics();
  const { logger, lines } = memoryLogger();
  const health: boolean[] = [];
  const settler = new Settler({ clock, logger, metrics });
  const writer = new BatchWriter({
    store,
    batchSize: options.batchSize ?? 3,
    batchMaxWaitMs: options.batchMaxWaitMs ?? 20,
    writeTimeoutMs: WRITE_TIMEOUT_MS,
    retry: RETRY,
    clock,
    random: () => 1, // the top of each jitter range, so waits are predictable
    logger,
    metrics,
    settler,
    onStoreHealth: (healthy) => health.push(healthy),
  });
  // As the consumer's onDelivery does: parse, then hand the activity to the writer.
  const add = (...ids: string[]) =>
    ids.forEach((id) => {
      const delivery = deliverEvent(channel, id);
      writer.add(delivery, activityOf(delivery));
    });
  return { clock, store, channel, metrics, lines, health, settler, writer, add };
}

describe('BatchWriter batching', () => {
  test('writes one insert as soon as BATCH_SIZE deliveries are waiting, then acks each', async () => {
    const { store, channel, add } = setup({ batchSize: 3 });
    add('a', 'b', 'c');
    await settle();
    assert.equal(store.calls.length, 1);
    assert.deepEqual(store.calls[0]!.map((doc) => doc._id), ['a', 'b', 'c']);
    assert.deepEqual(channel.ackedIds, ['a', 'b', 'c']);
  });

  test('writes a partial batch once its oldest delivery has waited BATCH_MAX_WAIT_MS', async () => {
    const { clock, store, channel, add } = setup({ batchSize: 3, batchMaxWaitMs: 20 });
    add('a');
    clock.advance(10);
    add('b');
    await settle();
    clock.advance(9);
    await settle();
    assert.equal(store.calls.length, 0, 'nothing is written before the oldest has waited 20 ms');
    clock.advance(1);
    await settle();
    assert.deepEqual(store.calls.map((docs) => docs.map((doc) => doc._id)), [['a', 'b']]);
    assert.deepEqual(channel.ackedIds, ['a', 'b']);
  });

  test('writes a second batch while the first is in flight, and a third once either of them has ended', async () => {
    const { store, channel, writer, add } = setup({ batchSize: 2 });
    const releaseFirst = store.hold();
    add('a', 'b');
    const releaseSecond = store.hold();
    add('c', 'd', 'e', 'f');
    await settle();
    assert.deepEqual(store.calls.map((docs) => docs.map((doc) => doc._id)), [['a', 'b'], ['c', 'd']], 'two at once; e and f wait');
    assert.equal(writer.inHand, 6);

    releaseSecond();
    await settle();
    assert.deepEqual(store.calls.map((docs) => docs.map((doc) => doc._id)), [['a', 'b'], ['c', 'd'], ['e', 'f']]);
    assert.deepEqual(channel.ackedIds, ['c', 'd', 'e', 'f'], 'the later batch is acked first; a and b are still being written');
    assert.equal(writer.inHand, 2);

    releaseFirst();
    await settle();
    assert.deepEqual(channel.ackedIds, ['c', 'd', 'e', 'f', 'a', 'b']);
    assert.equal(writer.inHand, 0);
  });

  test("counts and logs, by id, an event stored apart because another source's event held its id", async () => {
    const { store, channel, metrics, lines, writer } = setup({ batchSize: 2 });
    for (const source of ['beta', 'alpha']) {
      const delivery = channel.deliver(event('x', { source }), { messageId: 'x' });
      writer.add(delivery, activityOf(delivery));
    }
    await settle();
    assert.deepEqual([...store.docs.keys()], ['x', 'alpha:x']);
    assert.deepEqual(channel.ackedIds, ['x', 'x']);
    assert.match(metrics.registry.render(), /^consumer_cross_source_ids_total 1$/m);
    assert.deepEqual(
      lines.filter((line) => line.msg === 'event ids another source already holds, stored apart').map((line) => line.ids),
      [['alpha:x']],
    );
  });

  test('stores the document with the parsed fields and processedAt from the clock', async () => {
    const { clock, store, add } = setup({ batchSize: 1 });
    add('a');
    await settle();
    assert.deepEqual(store.docs.get('a'), {
      _id: 'a',
      id: 'a',
      userId: 'user-1',
      eventType: 'page_view',
      timestamp: new Date('2023-10-27T10:00:00Z'),
      payload: { page: '/home' },
      receivedAt: new Date('2023-10-27T10:00:01.000Z'),
      processedAt: new Date(clock.now()),
    });
  });
});

describe('BatchWriter and the wall clock', () => {
  test('a wall clock stepped back 10 minutes neither delays a partial batch nor changes its timer; processedAt follows the wall clock', async () => {
    const { clock, store, add } = setup({ batchSize: 3, batchMaxWaitMs: 20 });
    add('a');
    clock.stepWall(-600_000);
    clock.advance(20);
    await settle();
    assert.equal(store.calls.length, 1, 'written after 20 ms of monotonic time');
    assert.equal(store.docs.get('a')!.processedAt.getTime(), clock.wall());
    assert.equal(clock.wall(), clock.now() - 600_000);
  });
});

describe('BatchWriter acknowledgements', () => {
  test('acks nothing until the insert is acknowledged', async () => {
    const { store, channel, add } = setup({ batchSize: 2 });
    const release = store.hold();
    add('a', 'b');
    await settle();
    assert.equal(channel.acked.length, 0);
    release();
    await settle();
    assert.deepEqual(channel.ackedIds, ['a', 'b']);
  });

  test('acks a duplicate (already stored) like a stored message and counts it as skipped', async () => {
    const { store, channel, metrics, add } = setup({ batchSize: 2 });
    add('a', 'b');
    await settle();
    add('a', 'c');
    await settle();
    assert.deepEqual(channel.ackedIds, ['a', 'b', 'a', 'c']);
    assert.equal(store.docs.size, 3);
    assert.equal(metrics.stored.get(), 3);
    assert.equal(metrics.duplicates.get(), 1);
  });

  test('retries only a document that failed transiently, reporting the store unhealthy until it is stored', async () => {
    const { clock, store, channel, metrics, health, writer, add } = setup({ batchSize: 3 });
    store.failOnce('b');
    add('a', 'b', 'c');
    await settle();
    assert.deepEqual(channel.ackedIds, ['a', 'c'], 'the stored part is acked in the same write');
    assert.equal(writer.storeHealthy, false);
    assert.deepEqual(health, [false]);
    assert.equal(writer.inHand, 1);
    assert.equal(clock.nextIn, RETRY.baseMs, 'the retry waits for its back-off');

    clock.advance(clock.nextIn!);
    await settle();
    assert.deepEqual(store.calls.map((docs) => docs.map((doc) => doc._id)), [['a', 'b', 'c'], ['b']]);
    assert.deepEqual(channel.ackedIds, ['a', 'c', 'b']);
    assert.equal(writer.storeHealthy, true);
    assert.deepEqual(health, [false, true]);
    assert.equal(metrics.retries.get(), 1);
    assert.equal(channel.deadLettered.length + channel.nacked.length, 0, 'a transient failure is never dead-lettered');
  });

  test('in one write, acks the good documents and dead-letters one the server refused and one the driver cannot encode, without retry or back-off', async () => {
    const { clock, store, channel, metrics, health, settler, writer, add } = setup({ batchSize: 5 });
    store.refuse(121, 'b');
    store.unencodable('d');
    const release = channel.holdConfirms();
    add('a', 'b', 'c', 'd', 'e');
    await settle();

    assert.equal(store.calls.length, 1, 'one insertBatch call');
    assert.deepEqual(channel.ackedIds, ['a', 'c', 'e']);
    assert.deepEqual(channel.deadLetteredIds, ['b', 'd'], 'both copies are published in the same write cycle');
    assert.equal(writer.inHand, 0, 'the writer keeps none of them');
    assert.equal(settler.pending, 2, 'the settler holds the two until their copies are confirmed');
    assert.equal(clock.nextIn, undefined, 'no back-off timer, no batch timer');
    assert.equal(writer.storeHealthy, true);
    assert.deepEqual(health, []);

    release();
    await settle();
    assert.deepEqual(channel.ackedIds, ['a', 'c', 'e', 'b', 'd']);
    assert.deepEqual(
      channel.deadLettered.map(({ headers }) => headers[REJECTION_REASON_HEADER]),
      ['The database refused the document (code 121): fake', 'The driver cannot encode the document: fake'],
    );
    assert.equal(metrics.deadLettered.get({ cause: 'refused' }), 1);
    assert.equal(metrics.deadLettered.get({ cause: 'unencodable' }), 1);
    assert.equal(metrics.retries.get(), 0);
    assert.equal(metrics.stored.get(), 3);
    assert.equal(store.calls.length, 1, 'nothing written again');
  });

  test('dead-letters a refused document at once even when its neighbour must be retried', async () => {
    const { clock, store, channel, writer, add } = setup({ batchSize: 3 });
    store.refuse(2, 'b');
    store.failOnce('c');
    add('a', 'b', 'c');
    await settle();
    assert.deepEqual(channel.deadLetteredIds, ['b']);
    assert.deepEqual(channel.ackedIds, ['a', 'b']);
    assert.equal(writer.storeHealthy, false);

    clock.advance(clock.nextIn!);
    await settle();
    assert.deepEqual(store.calls.map((docs) => docs.map((doc) => doc._id)), [['a', 'b', 'c'], ['c']], 'only the transient failure is written again');
    assert.deepEqual(channel.ackedIds, ['a', 'b', 'c']);
    assert.equal(writer.storeHealthy, true);
  });
});

describe('BatchWriter during a database outage', () => {
  test('retries with capped exponential back-off, acking and nacking nothing, and reports the store unhealthy until a write succeeds', async () => {
    const { clock, store, channel, metrics, health, writer, add } = setup({ batchSize: 3 });
    store.down = true;
    add('a', 'b', 'c');
    await settle();
    assert.equal(writer.storeHealthy, false);
    assert.deepEqual(health, [false]);

    const waits: number[] = [];
    for (let retry = 0; retry < 5; retry++) {
      waits.push(clock.nextIn!);
      clock.advance(clock.nextIn!);
      await settle();
    }
    assert.deepEqual(waits, [100, 200, 400, 800, 1_000], 'doubling from RETRY_BASE_MS, capped at RETRY_MAX_MS');
    assert.equal(store.calls.length, 6);
    assert.equal(channel.acked.length + channel.nacked.length, 0, 'never acked, never requeued');

    store.down = false;
    clock.advance(clock.nextIn!);
    await settle();
    assert.deepEqual(channel.ackedIds, ['a', 'b', 'c']);
    assert.equal(writer.storeHealthy, true);
    assert.deepEqual(health, [false, true]);
    assert.equal(metrics.retries.get(), 6);
  });

  test('keeps the store unhealthy while one batch is retried, though the batch beside it is written and acked', async () => {
    const { clock, store, channel, health, writer, add } = setup({ batchSize: 2 });
    store.failOnce('b'); // taken by the first write to be answered: a and b's
    add('a', 'b', 'c', 'd');
    await settle();
    assert.equal(store.calls.length, 2, 'both batches written at once');
    assert.deepEqual(channel.ackedIds, ['a', 'c', 'd']);
    assert.equal(writer.storeHealthy, false, 'c and d stored after b failed do not make the store healthy while b waits');
    assert.deepEqual(health, [false]);
    assert.equal(writer.inHand, 1);

    clock.advance(clock.nextIn!);
    await settle();
    assert.deepEqual(channel.ackedIds, ['a', 'c', 'd', 'b']);
    assert.deepEqual(health, [false, true]);
  });

  test('while a batch is being retried, starts no other: one write at a time into a failing store', async () => {
    const { clock, store, channel, writer, add } = setup({ batchSize: 2 });
    store.down = true;
    add('a', 'b');
    await settle();
    add('c', 'd');
    await settle();
    assert.deepEqual(store.calls.map((docs) => docs.map((doc) => doc._id)), [['a', 'b']], 'c and d wait');
    assert.equal(writer.inHand, 4);

    store.down = false;
    clock.advance(clock.nextIn!);
    await settle();
    assert.deepEqual(store.calls.map((docs) => docs.map((doc) => doc._id)), [['a', 'b'], ['a', 'b'], ['c', 'd']]);
    assert.deepEqual(channel.ackedIds, ['a', 'b', 'c', 'd']);
  });

  test('drops the deliveries of a closed channel from the batch that holds them, and goes on retrying the other channel\'s batch', async () => {
    const { clock, store, writer } = setup({ batchSize: 2 });
    const closing = new FakeChannel();
    const staying = new FakeChannel();
    const addOn = (channel: FakeChannel, ...ids: string[]) =>
      ids.forEach((id) => {
        const delivery = deliverEvent(channel, id);
        writer.add(delivery, activityOf(delivery));
      });
    store.down = true;
    addOn(closing, 'a', 'b');
    addOn(staying, 'c', 'd');
    await settle();
    assert.equal(store.calls.length, 2);
    closing.open = false;

    clock.advance(RETRY.baseMs);
    await settle();
    assert.deepEqual(store.calls.map((docs) => docs.map((doc) => doc._id)), [['a', 'b'], ['c', 'd'], ['c', 'd']], 'a and b are not written again');
    assert.equal(writer.inHand, 2);

    store.down = false;
    clock.advance(clock.nextIn!);
    await settle();
    assert.deepEqual(staying.ackedIds, ['c', 'd']);
    assert.equal(closing.acked.length + closing.nacked.length, 0);
    assert.deepEqual(closing.closedCalls, []);
    assert.equal(writer.storeHealthy, true);
    assert.equal(writer.inHand, 0);
  });

  test('counts a write unanswered for WRITE_TIMEOUT_MS as failed and retries it; what the late answer stored is acked once, as duplicates', async () => {
    const { clock, store, channel, metrics, lines, health, writer, add } = setup({ batchSize: 3 });
    const release = store.hold();
    add('a', 'b', 'c');
    await settle();
    clock.advance(WRITE_TIMEOUT_MS - 1);
    await settle();
    assert.equal(writer.storeHealthy, true, 'still waiting just before the deadline');

    clock.advance(1);
    await settle();
    assert.equal(writer.storeHealthy, false);
    assert.deepEqual(health, [false]);
    assert.ok(lines.some((line) => line.msg === 'batch write failed' && JSON.stringify(line.err).includes(`within ${WRITE_TIMEOUT_MS} ms`)));

    release(); // the abandoned write lands after all
    await settle();
    assert.equal(channel.acked.length, 0, 'a late answer acks nothing');

    clock.advance(clock.nextIn!);
    await settle();
    assert.deepEqual(channel.ackedIds, ['a', 'b', 'c']);
    assert.equal(metrics.duplicates.get(), 3);
    assert.deepEqual(health, [false, true]);
  });

  test('drops deliveries whose channel the broker closed, without acking, and declares the store healthy only after a ping succeeds', async () => {
    const { clock, store, channel, health, writer, add } = setup({ batchSize: 3 });
    store.down = true;
    add('a', 'b', 'c');
    await settle();
    channel.open = false; // e.g. consumer_timeout: the broker requeued a, b and c itself

    clock.advance(clock.nextIn!);
    await settle();
    assert.equal(store.calls.length, 1, 'void deliveries are not written again');
    assert.equal(store.pings, 1);
    assert.equal(writer.storeHealthy, false, 'the ping failed: consumption stays paused');
    assert.equal(writer.inHand, 0, 'nothing kept in memory');

    store.down = false;
    clock.advance(clock.nextIn!);
    await settle();
    assert.equal(writer.storeHealthy, true);
    assert.deepEqual(health, [false, true]);
    assert.equal(channel.acked.length + channel.nacked.length, 0);
    assert.deepEqual(channel.closedCalls, []);
  });

  test('does not ack a delivery whose channel closed while its insert was in flight', async () => {
    const { store, channel, writer, add } = setup({ batchSize: 2 });
    const release = store.hold();
    add('a', 'b');
    await settle();
    channel.open = false;
    release();
    await settle();
    assert.equal(channel.acked.length, 0, 'the broker redelivers; the redelivery is a duplicate, acked then');
    assert.deepEqual(channel.closedCalls, []);
    assert.equal(store.docs.size, 2);
    assert.equal(writer.storeHealthy, true);
  });
});

describe('BatchWriter shutdown', () => {
  test('flush writes and acks a partial batch without waiting for its timer', async () => {
    const { store, channel, writer, add } = setup({ batchSize: 10 });
    add('a', 'b');
    await writer.flush();
    assert.equal(store.calls.length, 1);
    assert.deepEqual(channel.ackedIds, ['a', 'b']);
    assert.equal(writer.inHand, 0);
  });

  test('flush waits for both inserts in flight and for every later batch', async () => {
    const { store, channel, writer, add } = setup({ batchSize: 2 });
    const release = store.hold();
    add('a', 'b', 'c', 'd', 'e');
    await settle();
    let flushed = false;
    const flushing = writer.flush().then(() => (flushed = true));
    await settle();
    assert.equal(flushed, false, 'both inserts are still in flight');
    release();
    await flushing;
    assert.deepEqual(store.calls.map((docs) => docs.map((doc) => doc._id)), [['a', 'b'], ['c', 'd'], ['e']]);
    assert.deepEqual(channel.ackedIds, ['a', 'b', 'c', 'd', 'e']);
    assert.equal(writer.inHand, 0);
  });

  test('stop abandons the retries of every batch: what is unacked stays with the broker', async () => {
    const { clock, store, channel, writer, add } = setup({ batchSize: 1 });
    store.down = true;
    add('a', 'b');
    await settle();
    assert.equal(store.calls.length, 2);
    writer.stop();
    await writer.flush();
    assert.equal(clock.nextIn, undefined, 'no retry scheduled');
    store.down = false;
    clock.advance(60_000);
    await settle();
    assert.equal(store.calls.length, 2);
    assert.equal(channel.acked.length, 0);
  });
});
