// One address cannot hold the API, overload is answered rather than timed out, and the probes and
// metrics live on OPS_PORT apart from traffic: the API as a real process, on each runtime.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { ProblemDetails } from '@event-tracker/shared';
import { servicesMissing } from '../support/services.ts';
import { runtimeMissing, selectedRuntimes, waitFor, type RunningService } from '../support/processes.ts';
import { event, TestSystem } from '../support/system.ts';

const PER_CLIENT = 4;

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One request from `localAddress` (any of 127.0.0.0/8), on a connection of its own. */
function request(port: number, localAddress: string, method: string, path: string, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json' };
    const req = http.request({ host: '127.0.0.1', port, localAddress, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A kept-alive connection from 127.0.0.1 that asked one thing; undefined status: closed unanswered. */
function holdConnection(port: number, sockets: net.Socket[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' });
    sockets.push(socket);
    let received = '';
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
      if (received.includes('\r\n\r\n')) resolve(received.split('\r\n')[0]);
    });
    socket.on('close', () => resolve(undefined));
    socket.write('GET /openapi.json HTTP/1.1\r\nHost: api\r\n\r\n');
  });
}

async function metric(api: RunningService, line: RegExp): Promise<boolean> {
  const text = (await request(api.opsPort!, '127.0.0.1', 'GET', '/metrics')).body;
  return text.split('\n').some((entry) => line.test(entry));
}

for (const runtime of selectedRuntimes()) {
  describe(`overload and exposure on ${runtime}`, { skip: servicesMissing('RABBITMQ_URL', 'DATABASE_URL') || runtimeMissing(runtime) }, () => {
    let system: TestSystem;
    let api: RunningService;
    before(async () => {
      system = new TestSystem(runtime);
      Object.assign(system.apiEnv, {
        OPS_PORT: '0',
        OPS_HOST: '127.0.0.1',
        MAX_CONNECTIONS_PER_CLIENT: String(PER_CLIENT),
        MAX_IN_FLIGHT_REQUESTS: '1',
        // A hop count trusts no peer in particular, so 127.0.0.1 is capped like any client (and warned about).
        TRUST_PROXY: '1',
        REQUEST_TIMEOUT_MS: '20000',
      });
      api = await system.startApi();
    });
    after(() => system.stop());

    test('warns at start-up that WRITE_KEYS is empty and that a TRUST_PROXY hop count can be spoofed', () => {
      const warnings = api.logs.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((line) => line.level === 40).map((line) => line.msg);
      assert.ok(warnings.some((msg) => msg.startsWith('WRITE_KEYS is empty')), warnings.join('\n'));
      assert.ok(warnings.some((msg) => msg.startsWith('TRUST_PROXY is a hop count (1)')), warnings.join('\n'));
    });

    test('serves the probes and /metrics on OPS_PORT only: 404 problem+json for them on the public port, which still ingests', async () => {
      assert.notEqual(api.opsPort, undefined, 'the listening line names opsPort');
      for (const path of ['/health/live', '/health/ready', '/metrics']) {
        const publicReply = await request(api.port, '127.0.0.9', 'GET', path);
        assert.equal(publicReply.status, 404, path);
        assert.equal((JSON.parse(publicReply.body) as ProblemDetails).type, '/problems/not-found');
        assert.equal((await request(api.opsPort!, '127.0.0.9', 'GET', path)).status, 200, path);
      }
      assert.equal((await request(api.opsPort!, '127.0.0.9', 'POST', '/api/v1/activities', JSON.stringify(event(1)))).status, 404);
      assert.equal((await request(api.port, '127.0.0.9', 'POST', '/api/v1/activities', JSON.stringify(event(1)))).status, 202);
    });

    test(`one address holding ${PER_CLIENT} connections gets no more, while another address is served and the probes answer`, async () => {
      const sockets: net.Socket[] = [];
      try {
        const held = [];
        for (let i = 0; i < PER_CLIENT; i++) held.push(await holdConnection(api.port, sockets));
        assert.deepEqual(held, Array(PER_CLIENT).fill('HTTP/1.1 200 OK'));
        assert.equal(await holdConnection(api.port, sockets), undefined, 'one more from the same address is closed unanswered');
        assert.equal((await request(api.port, '127.0.0.2', 'POST', '/api/v1/activities', JSON.stringify(event(2)))).status, 202);
        assert.equal((await request(api.opsPort!, '127.0.0.1', 'GET', '/health/live')).status, 200, 'the ops server counts its own connections');
        assert.ok(await metric(api, /^api_connections_refused_total [1-9]/));
      } finally {
        for (const socket of sockets) socket.destroy();
      }
    });

    test(`a client whose answers close their connections is never refused while it holds at most ${PER_CLIENT}`, async () => {
      // A request shed (MAX_IN_FLIGHT_REQUESTS is 1 here) or past the rate limit is answered with
      // Connection: close, so the requests of this keep-alive agent go on new connections as the
      // last ones close.
      const agent = new http.Agent({ keepAlive: true, maxSockets: PER_CLIENT, localAddress: '127.0.0.5' } as http.AgentOptions);
      try {
        const answers = await Promise.all(
          Array.from({ length: 200 }, () =>
            new Promise<number | string>((resolve) => {
              const req = http.request({ host: '127.0.0.1', port: api.port, method: 'POST', path: '/api/v1/activities', headers: { 'content-type': 'application/json' }, agent }, (res) => {
                res.resume();
                res.on('end', () => resolve(res.statusCode!));
              });
              req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
              req.end(JSON.stringify(event(5)));
            }),
          ),
        );
        const unanswered = answers.filter((answer) => typeof answer !== 'number');
        assert.deepEqual(unanswered, [], 'every request answered, none closed unanswered');
        assert.ok(answers.filter((answer) => answer === 429 || answer === 503).length > 100, `answers that close their connection: ${answers.join()}`);
      } finally {
        agent.destroy();
      }
    });

    test('answers 503 overloaded with Retry-After at once while MAX_IN_FLIGHT_REQUESTS are in hand, then serves again', async () => {
      // A body that never finishes keeps its request in hand.
      const stalled = net.connect({ port: api.port, host: '127.0.0.1', localAddress: '127.0.0.3' });
      stalled.on('error', () => {});
      stalled.write('POST /api/v1/activities HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"userId":');
      try {
        await waitFor('the stalled request in hand', () => metric(api, /^api_in_flight_requests 1$/), 10_000);
        const shed = await request(api.port, '127.0.0.4', 'POST', '/api/v1/activities', JSON.stringify(event(3)));
        assert.equal(shed.status, 503);
        assert.equal(shed.headers['retry-after'], '2');
        assert.equal((JSON.parse(shed.body) as ProblemDetails).type, '/problems/overloaded');
        assert.ok(await metric(api, /^api_shed_requests_total\{reason="in-flight"\} [1-9]/));
      } finally {
        stalled.destroy();
      }
      await waitFor('the stalled request released', () => metric(api, /^api_in_flight_requests 0$/), 10_000);
      assert.equal((await request(api.port, '127.0.0.4', 'POST', '/api/v1/activities', JSON.stringify(event(4)))).status, 202);
    });
  });
}
