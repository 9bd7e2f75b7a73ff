// Liveness apart from readiness, on both services and every runtime: with the broker unreachable,
// then the database, and after each comes back. Liveness never depends on either; readiness says
// which dependency is down; the API keeps answering (503 with Retry-After) throughout.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { servicesMissing, serviceUrl } from '../support/services.ts';
import { runtimeMissing, selectedRuntimes, waitFor, type RunningService } from '../support/processes.ts';
import { TcpProxy } from '../support/tcpProxy.ts';
import { event, TestSystem } from '../support/system.ts';

interface Probe {
  readonly status: number;
  readonly checks: Record<string, string>;
}

async function probe(service: RunningService, path: '/health/live' | '/health/ready'): Promise<Probe> {
  const response = await fetch(`http://127.0.0.1:${service.port}${path}`);
  const body = (await response.json()) as { checks: Record<string, string> };
  return { status: response.status, checks: body.checks };
}

for (const runtime of selectedRuntimes()) {
  describe(`probes on ${runtime}`, { skip: servicesMissing('RABBITMQ_URL', 'DATABASE_URL') || runtimeMissing(runtime) }, () => {
    let system: TestSystem;
    let broker: TcpProxy;
    let database: TcpProxy;
    before(async () => {
      system = new TestSystem(runtime);
      broker = await TcpProxy.start(serviceUrl('RABBITMQ_URL'));
      database = await TcpProxy.start(serviceUrl('DATABASE_URL'));
      system.overrides.RABBITMQ_URL = broker.urlFor(serviceUrl('RABBITMQ_URL'));
      system.overrides.DATABASE_URL = database.urlFor(serviceUrl('DATABASE_URL'));
      await Promise.all([system.startApi(), system.startConsumer()]);
    });
    after(async () => {
      await system.stop();
      await Promise.all([broker.close(), database.close()]);
    });

    test('broker unreachable: both live, neither ready, ingestion 503 with Retry-After; both ready again once it returns', async () => {
      const api = system.api!;
      const consumer = system.consumer!;
      await waitFor('the consumer to be ready', async () => (await probe(consumer, '/health/ready')).status === 200);

      broker.cut();
      await waitFor('the API to be unready', async () => (await probe(api, '/health/ready')).status === 503);
      await waitFor('the consumer to be unready', async () => (await probe(consumer, '/health/ready')).status === 503);
      assert.deepEqual(await probe(api, '/health/ready'), { status: 503, checks: { rabbitmq: 'down' } });
      assert.deepEqual((await probe(consumer, '/health/ready')).checks, { rabbitmq: 'down', mongodb: 'up' });
      for (const service of [api, consumer]) assert.deepEqual(await probe(service, '/health/live'), { status: 200, checks: {} });
      const refused = await system.post(event(1), '127.9.0.1');
      assert.equal(refused.status, 503);

      broker.restore();
      for (const service of [api, consumer]) await waitFor('ready again', async () => (await probe(service, '/health/ready')).status === 200, 30_000);
      assert.equal((await system.post(event(2), '127.9.0.1')).status, 202);
    });

    test('database unreachable: the consumer stays live but not ready, the API is unaffected; ready again once it returns', async () => {
      const api = system.api!;
      const consumer = system.consumer!;
      database.cut();
      await waitFor('the consumer to be unready', async () => (await probe(consumer, '/health/ready')).status === 503);
      assert.deepEqual((await probe(consumer, '/health/ready')).checks, { rabbitmq: 'up', mongodb: 'down' });
      assert.deepEqual(await probe(consumer, '/health/live'), { status: 200, checks: {} });
      assert.equal((await probe(api, '/health/ready')).status, 200, 'the API does not depend on the database');

      database.restore();
      await waitFor('the consumer ready again', async () => (await probe(consumer, '/health/ready')).status === 200, 30_000);
    });
  });
}
