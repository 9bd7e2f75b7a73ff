import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNodeList } from '../src/broker/nodes.ts';
import { reconnectDelay } from '../src/broker/session.ts';
import { DEAD_LETTER_DELIVERY_LIMIT, partitionOf, routingKey, streamQueues, topologyPlan, type TopologyOptions } from '../src/broker/topology.ts';

const TOPOLOGY: TopologyOptions = { exchange: 'activities', queueName: 'user_activities', queueType: 'quorum', deliveryLimit: 10, replicas: 3, partitions: 1 };

describe('parseNodeList', () => {
  test('reads one URL or a comma-separated list, each node labelled host:port with the protocol default', () => {
    const { nodes, problems } = parseNodeList(' amqp://u:p@a ,amqps://b, amqp://c:5673/vh');
    assert.deepEqual(problems, []);
    assert.deepEqual(
      nodes.map((node) => [node.url, node.label]),
      [
        ['amqp://u:p@a', 'a:5672'],
        ['amqps://b', 'b:5671'],
        ['amqp://c:5673/vh', 'c:5673'],
      ],
    );
  });

  test('names a bad entry by position only, since an entry may hold a password', () => {
    const { problems } = parseNodeList('amqp://a,redis://u:secret@b');
    assert.deepEqual(problems, ['RABBITMQ_URL entry 2 of 2 must be an amqp:// or amqps:// URL']);
  });
});

describe('reconnectDelay', () => {
  const retry = { baseMs: 100, maxMs: 1_000 };
  const top = () => 1;

  test('moves on at once while some node of the list has not been tried since the last working session', () => {
    assert.deepEqual([1, 2].map((failures) => reconnectDelay(failures, 3, retry, top)), [0, 0]);
  });

  test('backs off once every node failed in a row, counted from that round', () => {
    assert.deepEqual([3, 4, 5, 6, 20].map((failures) => reconnectDelay(failures, 3, retry, top)), [100, 200, 400, 800, 1_000]);
  });

  test('with one node, backs off from the first loss, as before node lists', () => {
    assert.equal(reconnectDelay(1, 1, retry, top), 100);
  });
});

describe('topologyPlan', () => {
  test('one partition: the main queue bound to the topic exchange with #, its dead-letter queue first', () => {
    const plan = topologyPlan(TOPOLOGY);
    assert.deepEqual(plan.exchanges, [{ name: 'activities', type: 'topic' }]);
    assert.deepEqual(
      plan.queues.map((queue) => queue.name),
      ['user_activities.dead', 'user_activities'],
    );
    assert.deepEqual(plan.bindings, [{ kind: 'queue', queue: 'user_activities', exchange: 'activities', pattern: '#' }]);
    assert.equal(plan.queues[1]!.arguments['x-quorum-initial-group-size'], 3);
    assert.equal(plan.queues[1]!.arguments['x-dead-letter-routing-key'], 'user_activities.dead');
  });

  test("a quorum dead-letter queue states its delivery limit, so RabbitMQ 4's default of 20 cannot drop dead letters", () => {
    const dead = topologyPlan(TOPOLOGY).queues[0]!;
    assert.equal(dead.arguments['x-delivery-limit'], DEAD_LETTER_DELIVERY_LIMIT);
    assert.equal(dead.arguments['x-dead-letter-exchange'], undefined, 'a dead-letter queue has no target of its own');
  });

  test('partitions: N queues, each with its own dead-letter queue, behind a headers exchange bound to the topic exchange', () => {
    const plan = topologyPlan({ ...TOPOLOGY, partitions: 3 });
    assert.deepEqual(streamQueues({ ...TOPOLOGY, partitions: 3 }), ['user_activities.0', 'user_activities.1', 'user_activities.2']);
    assert.deepEqual(
      plan.queues.map((queue) => queue.name),
      ['user_activities.0.dead', 'user_activities.0', 'user_activities.1.dead', 'user_activities.1', 'user_activities.2.dead', 'user_activities.2'],
    );
    assert.equal(plan.queues[3]!.arguments['x-dead-letter-routing-key'], 'user_activities.1.dead');
    assert.deepEqual(plan.bindings[0], { kind: 'exchange', destination: 'user_activities.partitions', exchange: 'activities', pattern: '#' });
    assert.deepEqual(plan.bindings[2], { kind: 'queue', queue: 'user_activities.1', exchange: 'user_activities.partitions', pattern: '', arguments: { 'x-match': 'all', partition: '1' } });
  });

  test('classic queues carry no quorum arguments', () => {
    const plan = topologyPlan({ ...TOPOLOGY, queueType: 'classic' });
    assert.deepEqual(plan.queues[0]!.arguments, {});
    assert.deepEqual(Object.keys(plan.queues[1]!.arguments), ['x-dead-letter-exchange', 'x-dead-letter-routing-key']);
  });
});

describe('partitionOf', () => {
  test('is FNV-1a 32-bit modulo N, so every runtime and release puts a user in the same partition', () => {
    // The published FNV-1a test vectors (ASCII, where UTF-16 code units are the bytes).
    const hash = (text: string) => partitionOf(text, 2 ** 32);
    assert.deepEqual([hash(''), hash('a'), hash('foobar')], [0x811c9dc5, 0xe40c292c, 0xbf9cf968]);
    assert.equal(partitionOf('foobar', 3), 0xbf9cf968 % 3);
  });

  test('spreads users over every partition', () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 3_000; i++) counts[partitionOf(`user-${i}`, 3)]! += 1;
    for (const count of counts) assert.ok(count > 800 && count < 1_200, `${counts}`);
  });
});

describe('routingKey', () => {
  test('is the event type', () => {
    assert.equal(routingKey('page_view'), 'page_view');
  });

  test('cuts a type longer than AMQP allows (255 bytes) at the last whole character that fits', () => {
    const key = routingKey('é'.repeat(200));
    assert.equal(Buffer.byteLength(key), 254);
    assert.equal(key, 'é'.repeat(127));
    assert.equal(routingKey('a'.repeat(255)), 'a'.repeat(255));
  });
});
