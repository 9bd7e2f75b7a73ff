// The real Segment and RudderStack Node SDKs (tests/sdk-clients) against the running API and
// consumer, on each runtime, with WRITE_KEYS set: their track, identify and page calls are stored
// exactly once with the documented mapping; a flush that meets a broker outage is retried by the
// SDK itself and ends stored once; a wrong key is reported by the SDK as an error, and nothing is
// stored. The API reaches RabbitMQ through a TcpProxy, so the outage is the API's alone.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { StoredActivity } from '@event-tracker/shared';
import { MESSAGE_ID_NAMESPACE } from '../../api/src/segment.ts';
import { uuidV5 } from '../../api/src/uuidV5.ts';
import { clientsMissing, rudderClient, segmentClient, type SdkClient } from '../sdk-clients/clients.ts';
import { runtimeMissing, selectedRuntimes, waitFor } from '../support/processes.ts';
import { servicesMissing, serviceUrl } from '../support/services.ts';
import { TcpProxy } from '../support/tcpProxy.ts';
import { TestSystem } from '../support/system.ts';

const SDKS = [
  { source: 'segment-node', key: 'wk_e2e_segment_3Kp9', create: segmentClient },
  { source: 'rudder-node', key: 'wk_e2e_rudder_7Qm2', create: rudderClient },
] as const;
const WRITE_KEYS = SDKS.map(({ source, key }) => `${source}=${key}`).join(',');
const TRACKED_AT = new Date('2026-01-02T03:04:05.000Z');

/** The API's request log lines for `route` with `status`, counted. */
function answered(system: TestSystem, route: string, status: number): number {
  return system.api!.logs.filter((line) => line.includes('"msg":"request"') && line.includes(`"route":"${route}"`) && line.includes(`"status":${status},`)).length;
}

/** Every document of `userId`, once `count` are stored; each must carry the id its messageId gives. */
async function storedFor(system: TestSystem, userId: string, count: number): Promise<StoredActivity[]> {
  await waitFor(`${count} stored events of ${userId}`, async () => (await system.activities.countDocuments({ userId })) >= count, 60_000, () => system.consumer!.logs.slice(-20).join('\n'));
  const stored = await system.activities.find({ userId }).toArray();
  for (const doc of stored) assert.equal(doc._id, uuidV5(MESSAGE_ID_NAMESPACE, String(doc.payload.messageId)), 'the id is the name-based UUID of messageId');
  return stored;
}

function byType(stored: readonly StoredActivity[]): Map<string, StoredActivity> {
  return new Map(stored.map((doc) => [String(doc.payload.type), doc]));
}

for (const runtime of selectedRuntimes()) {
  describe(`real SDK clients on ${runtime}`, { skip: servicesMissing('RABBITMQ_URL', 'DATABASE_URL') || runtimeMissing(runtime) || clientsMissing() }, () => {
    let system: TestSystem;
    let broker: TcpProxy;
    let host: string;
    const clients: SdkClient[] = [];
    const client = (create: (host: string, key: string) => SdkClient, key: string): SdkClient => {
      const created = create(host, key);
      clients.push(created);
      return created;
    };

    before(async () => {
      broker = await TcpProxy.start(serviceUrl('RABBITMQ_URL'));
      system = new TestSystem(runtime);
      Object.assign(system.apiEnv, { WRITE_KEYS, RABBITMQ_URL: broker.urlFor(serviceUrl('RABBITMQ_URL')) });
      await Promise.all([system.startApi(), system.startConsumer()]);
      host = `http://127.0.0.1:${system.api!.port}`;
    });
    after(async () => {
      await Promise.all(clients.map((sdk) => sdk.close()));
      await system.stop();
      await broker.close();
    });

    for (const { source, key, create } of SDKS) {
      test(`${source}: track, identify and page calls are stored exactly once, mapped as documented, with the key's name as source`, async () => {
        const sdk = client(create, key);
        const userId = `${source}-${runtime}-calls`;
        const sent = Date.now();
        sdk.track({ userId, event: 'Order Completed', properties: { total: 10, currency: 'EUR' }, timestamp: TRACKED_AT });
        sdk.identify({ userId, traits: { plan: 'pro' }, timestamp: TRACKED_AT });
        sdk.page({ userId, name: 'Home', properties: { path: '/' } });
        assert.deepEqual(await sdk.flush(), []);

        const stored = await storedFor(system, userId, 3);
        assert.equal(stored.length, 3);
        const { track, identify, page } = Object.fromEntries(byType(stored));
        assert.ok(track && identify && page, `stored types: ${stored.map((doc) => doc.payload.type)}`);
        assert.deepEqual([track.eventType, identify.eventType, page.eventType], ['Order Completed', 'identify', 'page']);
        assert.ok(stored.every((doc) => doc.source === source && doc.id === doc._id && doc.userId === userId));
        assert.equal(track.timestamp.toISOString(), TRACKED_AT.toISOString());
        assert.deepEqual(track.payload.properties, { total: 10, currency: 'EUR' });
        assert.equal('event' in track.payload || 'userId' in track.payload, false, 'what became the event\'s own fields is not repeated');
        assert.deepEqual(identify.payload.traits, { plan: 'pro' });
        assert.equal(page.payload.name, 'Home');
        // Without a timestamp of its own, the page call has the time the SDK stamped it with.
        assert.ok(page.timestamp.getTime() >= sent - 1_000 && page.timestamp.getTime() <= Date.now(), `page timestamp ${page.timestamp.toISOString()}`);
        assert.ok(stored.every((doc) => JSON.stringify(doc).includes(key) === false), 'no key stored');
      });

      test(`${source}: a flush that meets a broker outage is retried by the SDK and ends stored exactly once`, async () => {
        const sdk = client(create, key);
        const userId = `${source}-${runtime}-outage`;
        const refusedBefore = answered(system, '/v1/batch', 503);
        let flushing: Promise<readonly string[]> | undefined;
        broker.cut();
        const ready = async () => (await fetch(`${host}/health/ready`).then((answer) => answer.status)) === 200;
        try {
          await waitFor('the API to lose the broker', async () => !(await ready()), 10_000);
          sdk.track({ userId, event: 'Checkout Started', properties: { step: 1 } });
          sdk.identify({ userId, traits: { plan: 'team' } });
          flushing = sdk.flush();
          await waitFor('the API to answer the SDK 503', () => answered(system, '/v1/batch', 503) > refusedBefore, 30_000, () => system.api!.logs.slice(-10).join('\n'));
        } finally {
          broker.restore();
        }
        assert.deepEqual(await flushing, [], 'the SDK retried until the API took the calls');
        const stored = await storedFor(system, userId, 2);
        assert.equal(stored.length, 2);
        assert.deepEqual([...byType(stored).keys()].sort(), ['identify', 'track']);
      });

      test(`${source}: a wrong write key is reported by the SDK as an error, and nothing is stored`, async () => {
        const userId = `${source}-${runtime}-wrong-key`;
        const refusedBefore = answered(system, '/v1/batch', 401);
        const wrong = client(create, `${key}-wrong`);
        wrong.track({ userId, event: 'Order Completed', properties: { total: 1 } });
        wrong.page({ userId, name: 'Home', properties: {} });
        assert.deepEqual(await wrong.flush(), ['[401] Unauthorized', '[401] Unauthorized']);
        // The API's log reaches us after its answer does (lines are written in batches, common/src/logger.ts).
        await waitFor('the 401 in the API log', () => answered(system, '/v1/batch', 401) > refusedBefore, 10_000, () => system.api!.logs.slice(-10).join('\n'));
        // A call with the right key, made after: once it is stored, anything published before it is too.
        const right = client(create, key);
        right.track({ userId: `${userId}-sentinel`, event: 'Sentinel', properties: {} });
        assert.deepEqual(await right.flush(), []);
        await storedFor(system, `${userId}-sentinel`, 1);
        assert.equal(await system.activities.countDocuments({ userId }), 0);
      });
    }
  });
}
