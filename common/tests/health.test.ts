import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readiness } from '../src/health.ts';

test('readiness is ok only when every check is up, and says which one is down', async () => {
  assert.deepEqual(await readiness({ rabbitmq: () => true, mongodb: async () => true }), { status: 'ok', checks: { rabbitmq: 'up', mongodb: 'up' } });
  assert.deepEqual(await readiness({ rabbitmq: () => true, mongodb: async () => false }), { status: 'unavailable', checks: { rabbitmq: 'up', mongodb: 'down' } });
});

test('info dependencies are reported and never change the status; without any, there is no info field', async () => {
  assert.deepEqual(await readiness({ rabbitmq: () => true }, { redis: () => false }), { status: 'ok', checks: { rabbitmq: 'up' }, info: { redis: 'down' } });
  assert.deepEqual(await readiness({ rabbitmq: () => false }, { redis: async () => true }), { status: 'unavailable', checks: { rabbitmq: 'down' }, info: { redis: 'up' } });
  assert.ok(!('info' in (await readiness({ rabbitmq: () => true }, {}))));
});
