// OPS_PORT: the probes and /metrics on a server of their own, and not on the public port, where
// they are 404 like any unknown path; unset, one server answers everything.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProblemDetails } from '@event-tracker/shared';
import { postJson, startApp, VALID_EVENT } from './helpers.ts';

const OPS_PATHS = ['/health/live', '/health/ready', '/health', '/metrics'];

describe('OPS_PORT', () => {
  test('set: the public server answers 404 problem+json for the probes and /metrics, and still ingests and serves /openapi.json', async (t) => {
    const app = await startApp(t, { env: { OPS_PORT: '0' } });
    for (const path of OPS_PATHS) {
      const response = await fetch(`${app.url}${path}`);
      assert.equal(response.status, 404, path);
      assert.equal(((await response.json()) as ProblemDetails).type, '/problems/not-found', path);
    }
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202);
    assert.equal((await fetch(`${app.url}/openapi.json`)).status, 200);
  });

  test('set: the ops server answers the probes and /metrics, and 404 for ingestion', async (t) => {
    const ops = await startApp(t, { env: { OPS_PORT: '0' }, audience: 'ops' });
    for (const path of OPS_PATHS) assert.equal((await fetch(`${ops.url}${path}`)).status, 200, path);
    const ingest = await postJson(`${ops.url}/api/v1/activities`, VALID_EVENT);
    assert.equal(ingest.status, 404);
    assert.equal(ops.publisher.published.length, 0);
  });

  test('unset: one server answers the probes, /metrics and ingestion', async (t) => {
    const app = await startApp(t);
    for (const path of OPS_PATHS) assert.equal((await fetch(`${app.url}${path}`)).status, 200, path);
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202);
  });
});
