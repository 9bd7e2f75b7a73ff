// No request can freeze the API (issue 21). Every ingestion route gets the worst bodies
// tests/support/hostileBodies.ts makes, each at its route's limit, plain and in every coding. Each
// must get its answer (2xx when it is a valid event, else a 4xx problem, never a 5xx), keep
// /health/live answering while it is handled, and hold the event loop less than a second: a
// generous bound for a busy CI machine. The target is far lower, and is measured, not asserted:
// bench/worstCase.ts, BENCHMARKS.md "Worst-case requests".
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startApp } from '../../api/tests/helpers.ts';
import { loadConfig } from '../../api/src/config.ts';
import { hostileRoutes } from '../support/hostileBodies.ts';
import { monitorLoopBlock } from '../support/loopBlock.ts';

const MAX_BLOCK_MS = 1_000;
const ENV = { RABBITMQ_URL: 'amqp://broker.invalid', RATE_LIMIT_MAX_REQUESTS: '1000000' };

describe('worst-case bodies', () => {
  for (const route of hostileRoutes(loadConfig(ENV))) {
    test(`${route.path}: each gets its 2xx or 4xx, holds the event loop under ${MAX_BLOCK_MS} ms, and /health/live answers meanwhile`, async (t) => {
      const app = await startApp(t, { env: ENV });
      const loop = monitorLoopBlock();
      t.after(() => loop.stop());
      for (const request of route.requests()) {
        loop.reset();
        let answered = false;
        const sent = fetch(`${app.url}${route.path}`, { method: 'POST', headers: request.headers, body: request.body }).then(async (answer) => {
          answered = true;
          return { status: answer.status, type: answer.headers.get('content-type') ?? '', text: await answer.text() };
        });
        let probes = 0;
        while (!answered) {
          assert.equal((await fetch(`${app.url}/health/live`)).status, 200, `/health/live during ${request.name}`);
          probes += 1;
        }
        const answer = await sent;
        const blockMs = loop.maxMs();
        const what = `${request.name} (${request.body.length} bytes sent): ${answer.status} ${answer.text.slice(0, 300)}`;
        if (request.expect === 'accepted') assert.ok(answer.status >= 200 && answer.status < 300, what);
        else {
          assert.ok(answer.status >= 400 && answer.status < 500, what);
          assert.match(answer.type, /^application\/problem\+json/, what);
        }
        assert.ok(probes > 0, `no /health/live probe went out during ${request.name}`);
        assert.ok(blockMs < MAX_BLOCK_MS, `${request.name} held the event loop ${blockMs.toFixed(0)} ms`);
        app.publisher.published.length = 0;
      }
    });
  }
});
