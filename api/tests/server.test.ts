// The entry file as a real process, on each runtime the services run on: configuration errors stop
// it, and with a broker it serves, then shuts down cleanly on SIGTERM.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { deleteTopology, serviceUrl, servicesMissing, uniqueName } from '../../tests/support/services.ts';
import { root, runtimeMissing, scriptCommand, selectedRuntimes, startService, stopService, waitFor } from '../../tests/support/processes.ts';
import { TcpProxy } from '../../tests/support/tcpProxy.ts';
import { VALID_EVENT, postJson } from './helpers.ts';

const PATH = `${join(root, 'node_modules/.bin')}:${process.env.PATH}`;

for (const runtime of selectedRuntimes()) {
  describe(`api/src/server.ts on ${runtime}`, { skip: runtimeMissing(runtime) }, () => {
    test('exits 1 with one fatal log line per bad variable, naming it', () => {
      const [command, ...args] = scriptCommand(runtime, 'api/src/server.ts');
      const result = spawnSync(command!, args, { cwd: root, env: { PATH, API_PORT: 'http' }, encoding: 'utf8' });
      assert.equal(result.status, 1, result.stderr);
      const lines = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { level: number; msg: string });
      assert.deepEqual(
        lines.map((line) => [line.level, line.msg]),
        [
          [60, 'invalid configuration: RABBITMQ_URL is required (an amqp:// or amqps:// URL, or a comma-separated list of them)'],
          [60, 'invalid configuration: API_PORT must be an integer from 0 to 65535 (got "http")'],
        ],
      );
    });

    test('listens with no broker: live 200, ready 503, ingestion 503 with Retry-After at once; then 202s once the broker is reachable, with no restart; exits 0 on SIGTERM', { skip: servicesMissing('RABBITMQ_URL') }, async (t) => {
      const queue = uniqueName('api_server');
      const proxy = await TcpProxy.start(serviceUrl('RABBITMQ_URL'));
      proxy.cut();
      t.after(async () => {
        await proxy.close();
        await deleteTopology(queue);
      });
      const api = await startService('api', runtime, {
        RABBITMQ_URL: proxy.urlFor(serviceUrl('RABBITMQ_URL')),
        QUEUE_NAME: queue,
        EVENTS_EXCHANGE: queue,
        API_HOST: '127.0.0.1',
        API_PORT: '0',
      });
      const base = `http://127.0.0.1:${api.port}`;
      assert.equal((await fetch(`${base}/health/live`)).status, 200);
      assert.equal((await fetch(`${base}/health/ready`)).status, 503);
      assert.equal((await fetch(`${base}/health`)).status, 503);
      const refused = await postJson(`${base}/api/v1/activities`, VALID_EVENT);
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '5');
      assert.equal(((await refused.json()) as { type: string }).type, '/problems/queue-unavailable');

      proxy.restore();
      await waitFor('readiness', async () => (await fetch(`${base}/health/ready`)).status === 200, 30_000, () => api.logs.join('\n'));
      const response = await postJson(`${base}/api/v1/activities`, VALID_EVENT);
      assert.equal(response.status, 202, api.logs.join('\n'));
      assert.equal(api.child.exitCode, null, 'the same process, never restarted');
      assert.equal(await stopService(api), 0, api.logs.join('\n'));
      assert.ok(api.logs.some((line) => line.includes('"msg":"stopped"')));
    });
  });
}
