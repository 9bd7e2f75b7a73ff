// The container healthcheck script, run as the images run it (Bun): it asks the readiness probe on
// the port the first set variable names, so the API image's check follows OPS_PORT when it is set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { join } from 'node:path';
import { root } from '../../tests/support/processes.ts';

async function probeServer(t: TestContext, status: number): Promise<string> {
  const server: Server = createServer((req, res) => res.writeHead(req.url === '/health/ready' ? status : 404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return String((server.address() as AddressInfo).port);
}

/** The script's exit code with `env`, asked for OPS_PORT, then API_PORT, then `fallback`. */
function healthcheck(env: Record<string, string>, fallback: string): Promise<number> {
  return new Promise((resolve) => {
    const child = execFile(join(root, 'node_modules/.bin/bun'), ['common/src/healthcheck.ts', 'OPS_PORT', 'API_PORT', fallback], { cwd: root, env: { PATH: process.env.PATH, ...env } });
    child.on('exit', (code) => resolve(code ?? -1));
  });
}

test('asks the port of the first variable that is set, else the default, and exits 0 only on a 200', async (t) => {
  const [ready, unready] = [await probeServer(t, 200), await probeServer(t, 503)];
  assert.equal(await healthcheck({ OPS_PORT: ready, API_PORT: unready }, unready), 0, 'OPS_PORT first');
  assert.equal(await healthcheck({ OPS_PORT: '', API_PORT: ready }, unready), 0, 'an empty OPS_PORT is unset');
  assert.equal(await healthcheck({}, ready), 0, 'the default');
  assert.equal(await healthcheck({ API_PORT: unready }, ready), 1, 'a 503');
});
