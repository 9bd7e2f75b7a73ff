// The three-node cluster the other cluster tests stand on (tests/support/rabbitCluster.ts): it runs
// as one cluster, replicates a quorum queue on every node, and survives the loss of the node leading it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import amqp from 'amqplib';
import { servicesMissing, serviceUrl, uniqueName } from '../support/services.ts';
import { waitFor } from '../support/processes.ts';
import { sharedCluster, type QuorumQueueState, type RabbitCluster } from '../support/rabbitCluster.ts';

describe('the three-node RabbitMQ cluster', { skip: servicesMissing('RABBITMQ_CLUSTER_URL', 'RABBITMQ_CLUSTER_DIR') }, () => {
  let cluster: RabbitCluster;
  const queue = uniqueName('cluster_smoke');

  before(() => {
    cluster = sharedCluster();
  });

  after(async () => {
    // Through whichever node is up: a failed test may have left one down.
    const live = cluster.nodes.filter((node) => cluster.isRunning(node));
    if (live.length < cluster.nodes.length) await Promise.all(cluster.nodes.filter((node) => !live.includes(node)).map((node) => cluster.restart(node)));
    const connection = await amqp.connect(cluster.nodes[0]!.url);
    try {
      await (await connection.createChannel()).deleteQueue(queue);
    } finally {
      await connection.close();
    }
  });

  test('RABBITMQ_CLUSTER_URL lists the three nodes, all running as one cluster', async () => {
    assert.equal(serviceUrl('RABBITMQ_CLUSTER_URL'), cluster.urls());
    assert.equal(cluster.nodes.length, 3);
    assert.deepEqual(await cluster.runningNodes(), cluster.nodes.map((node) => node.name).sort());
  });

  test('a quorum queue declared with x-quorum-initial-group-size 3 has a member on every node', async () => {
    const connection = await amqp.connect(cluster.nodes[0]!.url);
    try {
      const channel = await connection.createChannel();
      await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-quorum-initial-group-size': 3 } });
    } finally {
      await connection.close();
    }
    const state = await cluster.quorumQueue(queue);
    assert.deepEqual(state.members, cluster.nodes.map((node) => node.name).sort());
    assert.ok(state.members.includes(state.leader), `leader ${state.leader} is one of the members`);
  });

  test('SIGKILL of the leader\'s node: another node leads; started again, the node rejoins and its member is back online', async () => {
    const before = await cluster.quorumQueue(queue);
    const killed = cluster.node(before.leader);
    await cluster.kill(killed);

    let state: QuorumQueueState | undefined;
    await waitFor(
      `a new leader for ${queue}`,
      async () => {
        state = await cluster.quorumQueue(queue).catch(() => undefined);
        return state !== undefined && state.leader !== killed.name && state.online.includes(state.leader);
      },
      60_000,
      () => JSON.stringify(state),
    );
    assert.ok(!state!.online.includes(killed.name), `${killed.name} is not online while killed`);

    await cluster.restart(killed);
    assert.deepEqual(await cluster.runningNodes(), cluster.nodes.map((node) => node.name).sort());
    await waitFor(`${killed.name}'s member of ${queue} back online`, async () => (await cluster.quorumQueue(queue)).online.length === 3, 60_000, async () =>
      JSON.stringify(await cluster.quorumQueue(queue).catch((error: unknown) => String(error))),
    );
  });
});
