// Ids per source, end to end on each runtime with WRITE_KEYS set: an event id one write key's
// holder used first does not pre-empt another source's event with that id. Both are stored, the
// later under `<source>:<id>`, the collision is counted by the consumer, and a retry of either is
// still stored once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { servicesMissing } from '../support/services.ts';
import { runtimeMissing, selectedRuntimes, waitFor } from '../support/processes.ts';
import { event, TestSystem } from '../support/system.ts';

const KEYS = { alpha: 'wk_e2e_alpha_5Tz8', beta: 'wk_e2e_beta_2Rn4' } as const;
type Source = keyof typeof KEYS;

for (const runtime of selectedRuntimes()) {
  describe(`ids per source on ${runtime}`, { skip: servicesMissing('RABBITMQ_URL', 'DATABASE_URL') || runtimeMissing(runtime) }, () => {
    let system: TestSystem;
    before(async () => {
      system = new TestSystem(runtime);
      system.apiEnv.WRITE_KEYS = Object.entries(KEYS).map(([name, key]) => `${name}=${key}`).join(',');
      await Promise.all([system.startApi(), system.startConsumer()]);
    });
    after(() => system.stop());

    async function post(source: Source, body: unknown): Promise<number> {
      const response = await fetch(`http://127.0.0.1:${system.api!.port}/api/v1/activities`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-write-key': KEYS[source] },
        body: JSON.stringify(body),
      });
      await response.arrayBuffer();
      return response.status;
    }

    /** A counter of the consumer's /metrics, 0 until it first counts. */
    async function consumerCounter(name: string): Promise<number> {
      const text = await (await fetch(`http://127.0.0.1:${system.consumer!.port}/metrics`)).text();
      return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    }

    const explain = () => system.consumer!.logs.slice(-20).join('\n');

    test("a second source's event with an id the first already used is stored apart, counted, and its retry stored once", async () => {
      const id = randomUUID();
      // beta uses the id first, as a holder of its key who learned an id alpha will send would.
      assert.equal(await post('beta', { ...event(1, id), payload: { by: 'beta' } }), 202);
      await system.waitForStored(1);
      assert.equal(await post('alpha', { ...event(2, id), payload: { by: 'alpha' } }), 202);
      await system.waitForStored(2);

      const stored = await system.activities.find({ id }).sort({ source: 1 }).toArray();
      assert.deepEqual(
        stored.map(({ _id, id: storedId, source, payload }) => ({ _id, id: storedId, source, payload })),
        [
          { _id: `alpha:${id}`, id, source: 'alpha', payload: { by: 'alpha' } },
          { _id: id, id, source: 'beta', payload: { by: 'beta' } },
        ],
      );
      // Counted once the write's answer is in, which is after the document is visible.
      await waitFor('the collision to be counted', async () => (await consumerCounter('consumer_cross_source_ids_total')) === 1, 30_000, explain);

      // alpha retries its event: a duplicate of what it stored, not a second collision.
      assert.equal(await post('alpha', { ...event(2, id), payload: { by: 'alpha' } }), 202);
      await waitFor('the retry to be skipped as a duplicate', async () => (await consumerCounter('consumer_duplicates_skipped_total')) === 1, 30_000, explain);
      assert.equal(await system.activities.countDocuments({ id }), 2);
      assert.equal(await consumerCounter('consumer_cross_source_ids_total'), 1);
    });
  });
}
