// The session loop against the real RabbitMQ, through two proxies playing two nodes of a cluster.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNodeList } from '../src/broker/nodes.ts';
import { BrokerSession } from '../src/broker/session.ts';
import { createLogger } from '../src/logger.ts';
import { deleteTopology, servicesMissing, serviceUrl, testTopology, uniqueName } from '../../tests/support/services.ts';
import { waitFor } from '../../tests/support/processes.ts';
import { TcpProxy } from '../../tests/support/tcpProxy.ts';

describe('BrokerSession with a node list', { skip: servicesMissing('RABBITMQ_URL') }, () => {
  test('moves to the next node at once when its node is lost, backs off only after every node failed in a row, and logs nodes by host:port only', { timeout: 30_000 }, async (t) => {
    const url = serviceUrl('RABBITMQ_URL');
    const [first, second] = [await TcpProxy.start(url), await TcpProxy.start(url)];
    const queue = uniqueName('session');
    const lines: Record<string, unknown>[] = [];
    const opened: string[] = [];
    const { nodes } = parseNodeList([first.urlFor(url), second.urlFor(url)].join(','));
    // A back-off far longer than the test: any reconnect that waits for it fails the test.
    const session: BrokerSession = new BrokerSession({
      nodes,
      heartbeatSeconds: 5,
      topology: testTopology(queue),
      retry: { baseMs: 60_000, maxMs: 60_000 },
      connectionName: 'session-test',
      logger: createLogger({}, { level: 'debug', write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) }),
      handlers: {
        opened: () => {
          opened.push(String(lines.findLast((line) => line.msg === 'connected to the broker')?.node));
          session.worked();
        },
        lost: () => {},
      },
    });
    t.after(async () => {
      await session.close();
      await Promise.all([first.close(), second.close()]);
      await deleteTopology(queue);
    });
    session.start();
    await waitFor('the first session', () => opened.length === 1);
    assert.deepEqual(opened, [nodes[0]!.label]);

    first.cut(); // the first node dies, and stays down
    await waitFor('a session on the second node', () => opened.length === 2, 10_000);
    assert.deepEqual(opened, [nodes[0]!.label, nodes[1]!.label]);

    // Now the second dies too: the first is tried at once and refuses, and only then, every node
    // having failed in a row, does the session back off.
    second.cut();
    const reconnects = () => lines.filter((line) => line.msg === 'reconnecting to the broker');
    await waitFor('the back-off after a whole round', () => reconnects().some((line) => Number(line.delayMs) > 0), 10_000);
    // Lost on the second node: the first at once, then the second again at once, then the wait.
    assert.deepEqual(
      reconnects().slice(-3).map((line) => [line.node, Number(line.delayMs) >= 30_000 ? 'back-off' : line.delayMs]),
      [
        [nodes[0]!.label, 0],
        [nodes[1]!.label, 0],
        [nodes[0]!.label, 'back-off'],
      ],
    );
    assert.equal(opened.length, 2, 'no session while both nodes were down');

    const text = JSON.stringify(lines);
    assert.ok(!text.includes('guest:'), 'no URL with credentials in the log');
    assert.ok(lines.some((line) => line.msg === 'broker connection lost' && line.node === nodes[0]!.label));
  });
});
