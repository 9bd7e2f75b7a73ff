// Fault injection against real processes: a killed consumer, a database outage, broker-side
// connection loss and shutdown under load. Each test builds its own system and cleans it up.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { servicesMissing, serviceUrl } from '../support/services.ts';
import { runtimeMissing, selectedRuntimes, stopService, waitFor } from '../support/processes.ts';
import { brokerSideMissing, closeConnectionsOf } from '../support/brokerSide.ts';
import { TcpProxy } from '../support/tcpProxy.ts';
import { clientFor, event, TestSystem, type Answer } from '../support/system.ts';

const EVENTS = Number(process.env.E2E_FAULT_EVENTS ?? 200);

const CLIENTS = Math.ceil(EVENTS / 40);

/** Posts `count` events starting at `from`, ten at a time, and returns every answer. */
async function stream(system: TestSystem, from: number, count: number): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (let i = from; i < from + count; i += 10) {
    const batch = Array.from({ length: Math.min(10, from + count - i) }, (_, j) =>
      system.post(event(i + j), clientFor(i + j, CLIENTS)).catch(() => ({ status: 0 }) as Answer),
    );
    answers.push(...(await Promise.all(batch)));
  }
  return answers;
}

/** Every 202's id is stored exactly once and nothing else is. */
async function assertStoredExactly(system: TestSystem, answers: readonly Answer[]): Promise<void> {
  const accepted = answers.filter((answer) => answer.status === 202).map((answer) => answer.id!);
  await system.waitForStored(accepted.length);
  const stored = (await system.activities.find({}, { projection: { _id: 1 } }).toArray()).map((doc) => doc._id);
  assert.equal(stored.length, accepted.length, 'stored count equals accepted count');
  assert.deepEqual(new Set(stored), new Set(accepted), 'the stored ids are exactly the accepted ids');
}

for (const runtime of selectedRuntimes()) {
  describe(`faults on ${runtime}`, { skip: servicesMissing('RABBITMQ_URL', 'DATABASE_URL') || runtimeMissing(runtime) }, () => {
    let system: TestSystem;
    const proxies: TcpProxy[] = [];
    afterEach(async () => {
      await system.stop();
      await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
    });

    test('a consumer killed with SIGKILL mid-stream loses and duplicates nothing once restarted', async () => {
      system = new TestSystem(runtime);
      await Promise.all([system.startApi(), system.startConsumer()]);
      const answers = await stream(system, 0, EVENTS / 2);
      await stopService(system.consumer!, 'SIGKILL');
      answers.push(...(await stream(system, EVENTS / 2, EVENTS / 2)));
      await system.startConsumer();
      await assertStoredExactly(system, answers);
    });

    test('a database outage makes the consumer unhealthy, then it catches up with nothing lost', async () => {
      system = new TestSystem(runtime);
      const database = await TcpProxy.start(serviceUrl('DATABASE_URL'));
      proxies.push(database);
      system.overrides.DATABASE_URL = database.urlFor(serviceUrl('DATABASE_URL'));
      await Promise.all([system.startApi(), system.startConsumer()]);

      const answers = await stream(system, 0, EVENTS / 2);
      database.cut();
      await waitFor('consumer /health to report 503', async () => (await system.consumerHealth()) === 503);
      answers.push(...(await stream(system, EVENTS / 2, EVENTS / 2)));
      assert.equal(await system.consumerHealth(), 503, 'still unhealthy while the database is cut');
      database.restore();
      await waitFor('consumer /health to report 200', async () => (await system.consumerHealth()) === 200);
      await assertStoredExactly(system, answers);
    });

    test('broker-side connection loss under load: no 202 without a stored event, and the API recovers', { skip: brokerSideMissing() }, async () => {
      system = new TestSystem(runtime);
      await Promise.all([system.startApi(), system.startConsumer()]);
      const load = stream(system, 0, EVENTS);
      // Both services' connections, and nobody else's: the broker may be shared.
      const closed = [system.api!, system.consumer!].map((service) => closeConnectionsOf(service.child.pid!, serviceUrl('RABBITMQ_URL'), 'e2e fault test'));
      assert.ok(closed.every((count) => count > 0), `connections closed per service: ${closed}`);
      const answers = await load;
      assert.ok(answers.every((answer) => answer.status === 202 || answer.status === 503), `statuses: ${answers.map((a) => a.status)}`);
      const probes: Answer[] = [];
      await waitFor('the API to accept again', async () => {
        const probe = await system.post(event(EVENTS + probes.length), `127.9.1.${(probes.length % 250) + 1}`);
        probes.push(probe);
        return probe.status === 202;
      });
      const recovered = await stream(system, EVENTS + 100, 20);
      assert.ok(recovered.every((answer) => answer.status === 202), 'answers 202 again after reconnecting');
      await assertStoredExactly(system, [...answers, ...probes, ...recovered]);
    });

    test('SIGTERM under load: in-flight requests finish, both exit 0, nothing accepted is lost', async () => {
      system = new TestSystem(runtime);
      await Promise.all([system.startApi(), system.startConsumer()]);
      const load = stream(system, 0, EVENTS);
      // Well into the stream, so the signals land with requests in flight and deliveries in hand.
      await waitFor('a quarter of the events stored', async () => (await system.activities.countDocuments()) >= EVENTS / 4);
      const [apiExit, consumerExit] = await Promise.all([stopService(system.api!), stopService(system.consumer!)]);
      const answers = await load;
      assert.deepEqual([apiExit, consumerExit], [0, 0]);
      assert.ok(answers.every((answer) => [0, 202, 503].includes(answer.status)), `statuses: ${answers.map((a) => a.status)}`);
      await system.startConsumer();
      await assertStoredExactly(system, answers);
    });
  });
}
