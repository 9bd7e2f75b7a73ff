import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { QueueMessage } from '@event-tracker/shared';
import type { Publisher } from '../src/publisher.ts';
import { createLogger } from '@event-tracker/common/logger.ts';
import { shutDown } from '../src/shutdown.ts';
import { postJson, startApp, VALID_EVENT } from './helpers.ts';

/** A publisher whose confirm arrives when the test says so. */
class HeldPublisher implements Publisher {
  readonly unconfirmed = 0;
  #onCalled = () => {};
  #onConfirm = () => {};
  readonly called = new Promise<void>((resolve) => (this.#onCalled = resolve));
  readonly #confirmed = new Promise<void>((resolve) => (this.#onConfirm = resolve));

  isReady(): boolean {
    return true;
  }

  publish(_message: QueueMessage, _receivedAt: Date): Promise<void> {
    this.#onCalled();
    return this.#confirmed;
  }

  publishAll(): Promise<void> {
    return Promise.reject(new Error('no batches in these tests'));
  }

  confirm(): void {
    this.#onConfirm();
  }
}

function fakeBroker() {
  return {
    closed: false,
    async close() {
      this.closed = true;
    },
  };
}

describe('shutDown', () => {
  test('stops accepting, lets an in-flight request get its confirm and 202, then closes the broker', async (t) => {
    const publisher = new HeldPublisher();
    const app = await startApp(t, { publisher });
    const broker = fakeBroker();
    const inFlight = postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    await publisher.called;

    const stopped = shutDown(app.server, broker, 10_000, createLogger({}, { write: () => {} }));
    await assert.rejects(fetch(`${app.url}/health`), 'new connections are refused');
    assert.equal(broker.closed, false, 'the broker stays open while a confirm is awaited');

    publisher.confirm();
    assert.equal((await inFlight).status, 202);
    await stopped;
    assert.equal(broker.closed, true);
  });

  test('cuts connections still open at the deadline, then closes the broker', async (t) => {
    const app = await startApp(t, { publisher: new HeldPublisher() });
    const broker = fakeBroker();
    const inFlight = postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    await app.publisher.called;
    const lines: string[] = [];

    await shutDown(app.server, broker, 50, createLogger({}, { write: (line) => lines.push(line) }));
    await assert.rejects(inFlight, 'the client sees its connection cut, never a 202');
    assert.equal(broker.closed, true);
    assert.match(lines.join('\n'), /shutdown timeout reached/);
  });
});
