// Failover on a real three-node RabbitMQ cluster (tests/support/rabbitCluster.ts): the services are
// given the three nodes' URLs; steady traffic with client-chosen ids, each event retried with its own
// id until 202, flows while the node leading the queue is SIGKILLed and started again, and then while
// the whole cluster goes down and comes back. Nothing may be lost or stored twice.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import amqp from 'amqplib';
import { servicesMissing, serviceUrl } from '../support/services.ts';
import { runtimeMissing, selectedRuntimes, stopService, waitFor } from '../support/processes.ts';
import { sharedCluster, type RabbitCluster } from '../support/rabbitCluster.ts';
import { event, TestSystem } from '../support/system.ts';

const EVENTS_PER_SECOND = 150;
const WORKERS = 16;
/** A client's pause before it sends an event again after a 503 or a failed connection. */
const RETRY_MS = 200;
const MAX_PAUSE_MS = 15_000;
const MAX_NOT_READY_MS = 30_000;
/** An event still without a 202 this long after the traffic stops counts as lost. */
const SETTLE_MS = 60_000;
const CLIENT = '127.0.0.2';

const delay = (ms: number) => new Promise<void>((done) => setTimeout(done, Math.max(0, ms)));

/**
 * Steady traffic: WORKERS clients, each sending one event every WORKERS / EVENTS_PER_SECOND seconds
 * and retrying it, with the same id, until it is answered 202, as a careful SDK does. A client held up
 * by an outage does not catch up with a burst afterwards.
 */
class Traffic {
  readonly ids: string[] = [];
  /** When each 202 came, in order. */
  readonly acceptedAt: number[] = [];
  readonly answers = new Map<number, number>();
  unaccepted = 0;
  #stopping = false;
  #giveUpAt = Infinity;
  readonly #workers: Promise<void>[];
  readonly #system: TestSystem;

  constructor(system: TestSystem) {
    this.#system = system;
    this.#workers = Array.from({ length: WORKERS }, () => this.#work());
  }

  async #work(): Promise<void> {
    const interval = (WORKERS * 1000) / EVENTS_PER_SECOND;
    await delay(Math.random() * interval); // the clients spread over the interval, not all at once
    while (!this.#stopping) {
      const started = performance.now();
      await this.#deliver();
      await delay(started + interval - performance.now());
    }
  }

  async #deliver(): Promise<void> {
    const id = randomUUID();
    const index = this.ids.push(id) - 1;
    while (performance.now() < this.#giveUpAt) {
      const { status } = await this.#system.post(event(index, id), CLIENT).catch(() => ({ status: 0 }));
      this.answers.set(status, (this.answers.get(status) ?? 0) + 1);
      if (status === 202) {
        this.acceptedAt.push(performance.now());
        return;
      }
      await delay(RETRY_MS);
    }
    this.unaccepted += 1;
  }

  /** Stops sending new events and waits until every event sent has its 202, or SETTLE_MS has passed. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#giveUpAt = performance.now() + SETTLE_MS;
    await Promise.all(this.#workers);
  }

  /** Stops at once, giving up on the events still without a 202: for a test that has failed already. */
  async abort(): Promise<void> {
    this.#stopping = true;
    this.#giveUpAt = 0;
    await Promise.all(this.#workers);
  }

  /** The longest time without a 202 in [from, to], counting from `from` to the first 202 after it. */
  longestPause(from: number, to: number): number {
    let previous = from;
    let longest = 0;
    for (const at of this.acceptedAt) {
      if (at < from) continue;
      if (at > to) break;
      longest = Math.max(longest, at - previous);
      previous = at;
    }
    return longest;
  }

  summary(): string {
    return `${this.ids.length} events, answers by status ${JSON.stringify(Object.fromEntries(this.answers))}`;
  }
}

/** /health/ready polled every 100 ms, so an outage of readiness is seen however short it is. */
class ReadinessLog {
  readonly samples: { at: number; ready: boolean }[] = [];
  #running = true;
  readonly #done: Promise<void>;

  constructor(port: () => number) {
    this.#done = (async () => {
      while (this.#running) {
        const status = await fetch(`http://127.0.0.1:${port()}/health/ready`)
          .then(async (response) => (await response.arrayBuffer(), response.status))
          .catch(() => 0);
        this.samples.push({ at: performance.now(), ready: status === 200 });
        await delay(100);
      }
    })();
  }

  /** How long after `from` readiness was back for good: 0 when it never went down. */
  backAfter(from: number): number {
    const lastDown = this.samples.findLast((sample) => sample.at >= from && !sample.ready);
    if (lastDown === undefined) return 0;
    const upAgain = this.samples.find((sample) => sample.at > lastDown.at && sample.ready);
    return upAgain === undefined ? Infinity : upAgain.at - from;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }
}

// Node 20 runs the same sources through tsx; each runtime costs the cluster minutes on a small machine.
const runtimes = selectedRuntimes().filter((runtime) => runtime !== 'node20-tsx');

for (const runtime of runtimes) {
  const skip = servicesMissing('RABBITMQ_URL', 'DATABASE_URL', 'RABBITMQ_CLUSTER_URL', 'RABBITMQ_CLUSTER_DIR') || runtimeMissing(runtime);
  describe(`failover on a three-node RabbitMQ cluster, on ${runtime}`, { skip }, () => {
    let cluster: RabbitCluster;
    let system: TestSystem;
    let readiness: ReadinessLog;
    /** Every event any test here sent, all of which must be stored exactly once. */
    const sent: string[] = [];
    const apiLog: string[] = [];

    before(async () => {
      cluster = sharedCluster();
      system = new TestSystem(runtime);
      system.overrides.RABBITMQ_URL = serviceUrl('RABBITMQ_CLUSTER_URL');
      // The limiter is not what this suite is about, and a retrying client would run into it.
      system.apiEnv.RATE_LIMIT_MAX_REQUESTS = '1000000';
      // The consumer declares the queue, and RabbitMQ places its leader; then both services start
      // with that node first in their list, so the kill below takes their connections as well.
      await system.startConsumer();
      let leader = '';
      await waitFor(`${system.queue} declared on the cluster`, async () => {
        leader = (await cluster.quorumQueue(system.queue).catch(() => undefined))?.leader ?? '';
        return leader !== '';
      });
      await stopService(system.consumer!);
      const first = cluster.node(leader);
      system.overrides.RABBITMQ_URL = [first, ...cluster.nodes.filter((node) => node !== first)].map((node) => node.url).join(',');
      await Promise.all([system.startApi(), system.startConsumer()]);
      // Request lines soon fill the API's kept log tail; the broker's story is kept apart.
      createInterface({ input: system.api!.child.stdout! }).on('line', (line) => {
        if (!line.includes('"msg":"request"')) apiLog.push(line);
      });
      readiness = new ReadinessLog(() => system.api!.port);
    });

    after(async () => {
      await readiness?.stop();
      if (system === undefined) return;
      // A failed test may have left nodes down; the next suite needs all three.
      await Promise.all(cluster.nodes.filter((node) => !cluster.isRunning(node)).map((node) => cluster.startNode(node)));
      await cluster.waitForRunning(cluster.nodes.length);
      await system.stop();
      const connection = await amqp.connect(cluster.nodes[0]!.url);
      try {
        const channel = await connection.createChannel();
        for (const queue of [system.queue, `${system.queue}.dead`]) await channel.deleteQueue(queue);
        await channel.deleteExchange(system.queue);
      } finally {
        await connection.close();
      }
    });

    /** Every event answered 202 once the traffic stops; then every one stored, each exactly once. */
    async function assertNothingLostOrDuplicated(traffic: Traffic): Promise<void> {
      await traffic.stop();
      assert.equal(traffic.unaccepted, 0, `every event answered 202 within ${SETTLE_MS} ms of the traffic stopping (${traffic.summary()})`);
      sent.push(...traffic.ids);
      await system.waitForStored(sent.length, 120_000);
      const stored = (await system.activities.find({}, { projection: { _id: 1 } }).toArray()).map((doc) => doc._id);
      assert.equal(stored.length, sent.length, `as many documents as events sent (${traffic.summary()})`);
      assert.deepEqual(new Set(stored), new Set(sent), 'the stored ids are exactly the ids sent');
    }

    /** What explains a stall: the answers so far and the services' own account. */
    const explain = (traffic: Traffic) => () =>
      `${traffic.summary()}\napi log (requests left out):\n${apiLog.slice(-15).join('\n')}\nconsumer log tail:\n${system.consumer!.logs.slice(-15).join('\n')}`;

    function assertAlive(): void {
      for (const service of [system.api!, system.consumer!]) {
        assert.equal(service.child.exitCode, null, `still running:\n${service.logs.slice(-20).join('\n')}`);
        assert.equal(service.child.signalCode, null);
      }
    }

    test('the node leading the queue SIGKILLed mid-stream, then started again: no event lost or stored twice, short pause', async (t) => {
      const traffic = new Traffic(system);
      t.after(() => traffic.abort());
      await waitFor('traffic flowing', () => traffic.acceptedAt.length >= EVENTS_PER_SECOND, 30_000, explain(traffic));
      const { leader } = await cluster.quorumQueue(system.queue);
      const killedAt = performance.now();
      await cluster.kill(cluster.node(leader));
      await waitFor('202s again after the kill', () => traffic.acceptedAt.at(-1)! > killedAt, MAX_PAUSE_MS, explain(traffic));
      await delay(3_000); // traffic on the two surviving nodes for a while
      await cluster.restart(cluster.node(leader));
      await delay(2_000); // and with the node back
      const stoppedAt = performance.now();
      await assertNothingLostOrDuplicated(traffic);

      const pause = traffic.longestPause(traffic.acceptedAt[0]!, stoppedAt);
      const notReady = readiness.backAfter(killedAt);
      t.diagnostic(`${runtime}: leader ${leader} killed; longest pause between 202s ${Math.round(pause)} ms; readiness back ${Math.round(notReady)} ms after the kill; ${traffic.summary()}`);
      assert.ok(pause <= MAX_PAUSE_MS, `longest pause between 202s ${Math.round(pause)} ms, at most ${MAX_PAUSE_MS}`);
      assert.ok(notReady <= MAX_NOT_READY_MS, `readiness back ${Math.round(notReady)} ms after the kill, at most ${MAX_NOT_READY_MS}`);
      assertAlive();
    });

    test('the whole cluster down and up again: no event lost or stored twice, 202s and readiness soon back', async (t) => {
      const traffic = new Traffic(system);
      t.after(() => traffic.abort());
      await waitFor('traffic flowing', () => traffic.acceptedAt.length >= EVENTS_PER_SECOND, 30_000, explain(traffic));
      const downAt = performance.now();
      await cluster.killAll();
      await cluster.startAll();
      const backAt = performance.now();
      await waitFor('202s again once the cluster is back', () => traffic.acceptedAt.at(-1)! > backAt, MAX_PAUSE_MS, explain(traffic));
      await delay(3_000); // traffic on the restarted cluster for a while
      const stoppedAt = performance.now();
      await assertNothingLostOrDuplicated(traffic);

      // While no node runs nothing can be accepted: the pauses that count are those once it is back.
      const pause = Math.max(traffic.longestPause(traffic.acceptedAt[0]!, downAt), traffic.longestPause(backAt, stoppedAt));
      const notReady = readiness.backAfter(backAt);
      t.diagnostic(
        `${runtime}: cluster down ${Math.round(backAt - downAt)} ms; longest pause between 202s outside it ${Math.round(pause)} ms; readiness back ${Math.round(notReady)} ms after it; ${traffic.summary()}`,
      );
      assert.ok(pause <= MAX_PAUSE_MS, `longest pause between 202s ${Math.round(pause)} ms, at most ${MAX_PAUSE_MS}`);
      assert.ok(notReady <= MAX_NOT_READY_MS, `readiness back ${Math.round(notReady)} ms after the cluster, at most ${MAX_NOT_READY_MS}`);
      assertAlive();
    });
  });
}
