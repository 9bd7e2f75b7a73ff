// The per-client connection cap: a connection over MAX_CONNECTIONS_PER_CLIENT is closed unanswered
// as it arrives and counted; others' connections, and TRUST_PROXY's listed proxies, are not capped.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Server } from 'node:http';
import type { TestContext } from 'node:test';
import { ConnectionCounts } from '../src/connectionLimit.ts';
import { startApp } from './helpers.ts';

interface Answered {
  readonly socket: net.Socket;
  /** The status line, or undefined when the server closed the connection without a byte. */
  readonly statusLine: string | undefined;
}

/**
 * Opens a kept-alive connection from 127.0.0.1 and asks /health/live on it: once it is answered
 * the server has counted the connection. A refused one closes with no answer.
 */
function connectAndProbe(t: TestContext, port: number): Promise<Answered> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    t.after(() => socket.destroy());
    let received = '';
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
      if (received.includes('\r\n\r\n')) resolve({ socket, statusLine: received.split('\r\n')[0] });
    });
    socket.on('close', () => resolve({ socket, statusLine: undefined }));
    socket.write('GET /health/live HTTP/1.1\r\nHost: api\r\n\r\n');
  });
}

const openConnections = (server: Server): Promise<number> => new Promise((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));

const portOf = (url: string): number => Number(new URL(url).port);

describe('ConnectionCounts', () => {
  test('takes up to the cap per key, and a key is forgotten with its last connection', () => {
    const counts = new ConnectionCounts(2);
    assert.deepEqual([counts.take('a'), counts.take('a'), counts.take('a'), counts.take('b')], [true, true, false, true]);
    counts.release('a');
    assert.equal(counts.take('a'), true);
    counts.release('b');
    assert.equal(counts.size, 1);
  });
});

describe('MAX_CONNECTIONS_PER_CLIENT', () => {
  test('closes a connection over the cap unanswered and counts it; one closed makes room again', async (t) => {
    const app = await startApp(t, { env: { MAX_CONNECTIONS_PER_CLIENT: '2' } });
    const port = portOf(app.url);
    const held = [await connectAndProbe(t, port), await connectAndProbe(t, port)];
    assert.deepEqual(held.map(({ statusLine }) => statusLine), ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);

    assert.equal((await connectAndProbe(t, port)).statusLine, undefined, 'a third connection from the same address');
    const closed = new Promise((resolve) => held[0]!.socket.once('close', resolve));
    held[0]!.socket.destroy();
    await closed;
    // The server hears of the close on a later turn: wait until it holds only the other connection.
    while ((await openConnections(app.server)) > 1) await new Promise(setImmediate);
    assert.equal((await connectAndProbe(t, port)).statusLine, 'HTTP/1.1 200 OK');

    // Read in process: a fetch would be a third connection from this address.
    assert.ok(app.metrics.registry.render().split('\n').includes('api_connections_refused_total 1'));
  });

  test("does not cap TRUST_PROXY's listed proxies, which carry many clients", async (t) => {
    const app = await startApp(t, { env: { MAX_CONNECTIONS_PER_CLIENT: '1', TRUST_PROXY: '127.0.0.1' } });
    const answers = [await connectAndProbe(t, portOf(app.url)), await connectAndProbe(t, portOf(app.url)), await connectAndProbe(t, portOf(app.url))];
    assert.deepEqual(answers.map(({ statusLine }) => statusLine), Array(3).fill('HTTP/1.1 200 OK'));
  });

  test('caps a hop-count TRUST_PROXY peer like any client: a hop count names no proxy', async (t) => {
    const app = await startApp(t, { env: { MAX_CONNECTIONS_PER_CLIENT: '1', TRUST_PROXY: '1' } });
    assert.equal((await connectAndProbe(t, portOf(app.url))).statusLine, 'HTTP/1.1 200 OK');
    assert.equal((await connectAndProbe(t, portOf(app.url))).statusLine, undefined);
  });
});
