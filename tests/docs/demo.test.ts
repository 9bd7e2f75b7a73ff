// Runs scripts/demo.sh, the curl tour README points newcomers to, against a real API (started as
// README's `npm run start:api` does) on the real RabbitMQ, so the script cannot rot unnoticed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { root, startReady, stopService } from '../support/processes.ts';
import { deleteTopology, serviceUrl, servicesMissing, uniqueName } from '../support/services.ts';

const run = promisify(execFile);
const skip = servicesMissing('RABBITMQ_URL');

test('scripts/demo.sh runs against a live API and shows 202 (one event and a batch), 400, 415 and a 429 with Retry-After', { skip }, async (t) => {
  const queue = uniqueName('docs_demo');
  t.after(() => deleteTopology(queue));
  const api = await startReady('api', 'node20-tsx', {
    RABBITMQ_URL: serviceUrl('RABBITMQ_URL'),
    QUEUE_NAME: queue,
    EVENTS_EXCHANGE: queue,
    API_HOST: '127.0.0.1',
    API_PORT: '0',
  });
  t.after(() => stopService(api));

  const { stdout } = await run('bash', ['scripts/demo.sh'], {
    cwd: root,
    env: { ...process.env, API_URL: `http://127.0.0.1:${api.port}` },
    timeout: 60_000,
  });

  for (const status of ['202 Accepted', '400 Bad Request', '415 Unsupported Media Type', '404 Not Found', '405 Method Not Allowed', '429 Too Many Requests']) {
    assert.match(stdout, new RegExp(`^HTTP/1\\.1 ${status}\\r?$`, 'm'), `no "${status}" answer in the demo output`);
  }
  assert.match(stdout, /^Retry-After: [1-9]\d*\r?$/m);
  // The batch's answer: the id the demo chose, then the one the API made, in request order.
  assert.match(stdout, /^\{"status":"accepted","ids":\["0b7e4c1a-3f2d-4e5b-9a8c-1d2e3f4a5b6c","[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"\]\}$/m);
  assert.match(stdout, /^\{"status":"ok","checks":\{"rabbitmq":"up"\}\}$/m);
  assert.match(stdout, /^# TYPE api_http_requests_total counter$/m);
});
