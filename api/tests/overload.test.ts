// Load shedding: while the event loop runs late or too many ingestion requests are in hand, a new
// one is answered 503 overloaded with Retry-After before any work, counted in metrics; probes are
// never shed. The loop's lateness is sampled on the injected clock, stepped here by hand.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProblemDetails, QueueMessage } from '@event-tracker/shared';
import { LoadShedder, SAMPLE_INTERVAL_MS } from '../src/overload.ts';
import { FakePublisher, fakeClock, postJson, startApp, VALID_EVENT } from './helpers.ts';

/** Holds every publish until release(): a request stays in flight as long as the test likes. */
class HeldPublisher extends FakePublisher {
  #release!: () => void;
  readonly #gate = new Promise<void>((resolve) => (this.#release = resolve));
  #entered!: () => void;
  /** Resolves once a publish is waiting at the gate. */
  readonly entered = new Promise<void>((resolve) => (this.#entered = resolve));

  override async publish(message: QueueMessage, receivedAt: Date): Promise<void> {
    this.#entered();
    await this.#gate;
    return super.publish(message, receivedAt);
  }

  release(): void {
    this.#release();
  }
}

async function metricLines(url: string): Promise<string[]> {
  return (await (await fetch(`${url}/metrics`)).text()).split('\n');
}

describe('LoadShedder', () => {
  test('reads the event loop as late by how much a sample ran past its interval, and only the latest sample counts', () => {
    const clock = fakeClock();
    const shedder = new LoadShedder({ maxInFlight: 10, maxEventLoopDelayMs: 500, now: clock.now });
    clock.advance(SAMPLE_INTERVAL_MS);
    shedder.sample();
    assert.equal(shedder.eventLoopDelayMs, 0);
    assert.equal(shedder.check(), undefined);
    clock.advance(SAMPLE_INTERVAL_MS + 499);
    shedder.sample();
    assert.equal(shedder.check(), undefined, 'below the threshold');
    clock.advance(SAMPLE_INTERVAL_MS + 500);
    shedder.sample();
    assert.equal(shedder.eventLoopDelayMs, 500);
    assert.equal(shedder.check(), 'event-loop-delay');
    clock.advance(SAMPLE_INTERVAL_MS);
    shedder.sample();
    assert.equal(shedder.check(), undefined, 'one sample on time ends it');
  });

  test('sheds at the in-flight limit and counts each release once', () => {
    const shedder = new LoadShedder({ maxInFlight: 2, maxEventLoopDelayMs: 500, now: fakeClock().now });
    const first = shedder.enter();
    shedder.enter();
    assert.equal(shedder.check(), 'in-flight');
    first();
    first();
    assert.equal(shedder.inFlight, 1);
    assert.equal(shedder.check(), undefined);
  });
});

describe('overload shedding in the app', () => {
  test('answers 503 overloaded with Retry-After while the event loop runs late, counts it, spends no rate-limit budget, and keeps the probes answering', async (t) => {
    const app = await startApp(t, { env: { MAX_EVENT_LOOP_DELAY_MS: '1000', RATE_LIMIT_MAX_REQUESTS: '1' } });
    app.clock.advance(SAMPLE_INTERVAL_MS + 1500);
    app.shedder.sample();

    const shed = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    assert.equal(shed.status, 503);
    assert.equal(shed.headers.get('retry-after'), '2');
    assert.equal(shed.headers.get('connection'), 'close', 'the body was never read');
    assert.equal(shed.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    const problem = (await shed.json()) as ProblemDetails;
    assert.deepEqual([problem.type, problem.status, problem.detail], ['/problems/overloaded', 503, 'The API is overloaded; retry in 2 s.']);
    assert.equal((await fetch(`${app.url}/health/live`)).status, 200);
    assert.equal(app.publisher.published.length, 0);
    const lines = await metricLines(app.url);
    assert.ok(lines.includes('api_shed_requests_total{reason="event-loop-delay"} 1'), lines.join('\n'));
    assert.ok(lines.includes('api_event_loop_delay_seconds 1.5'), lines.join('\n'));

    app.clock.advance(SAMPLE_INTERVAL_MS);
    app.shedder.sample();
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202, 'served, within the one request its budget allows');
  });

  test('answers 503 overloaded while MAX_IN_FLIGHT_REQUESTS are in hand, and serves again once one is answered', async (t) => {
    const publisher = new HeldPublisher();
    const app = await startApp(t, { env: { MAX_IN_FLIGHT_REQUESTS: '1' }, publisher });
    const held = postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    await publisher.entered;
    assert.ok((await metricLines(app.url)).includes('api_in_flight_requests 1'));

    const shed = await postJson(`${app.url}/api/v1/activities/batch`, { batch: [VALID_EVENT] });
    assert.equal(shed.status, 503);
    assert.equal(((await shed.json()) as ProblemDetails).type, '/problems/overloaded');
    assert.ok((await metricLines(app.url)).includes('api_shed_requests_total{reason="in-flight"} 1'));

    publisher.release();
    assert.equal((await held).status, 202);
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT)).status, 202);
    assert.ok((await metricLines(app.url)).includes('api_in_flight_requests 0'));
  });
});
