// A real browser on another origin, on each runtime: headless Chromium (Debian's package, driven by
// playwright-core) opens a page served from a second local port, and that page posts to the real
// API as a site's tracker would: one event with fetch and JSON (preflighted), a batch gzipped with
// CompressionStream (preflighted), and a navigator.sendBeacon batch when the page goes away.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { ActivityEvent } from '@event-tracker/shared';
import { servicesMissing } from '../support/services.ts';
import { runtimeMissing, selectedRuntimes, waitFor } from '../support/processes.ts';
import { event, TestSystem } from '../support/system.ts';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// No sandbox: CI and the test image run as root, where Chromium refuses to start with one.
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
/** Every wait on the browser or the system ends by this; the whole file takes a few seconds a runtime. */
const WAIT_MS = 20_000;

/** Like servicesMissing: false when Chromium is there, else the skip reason; throws under REQUIRE_SERVICES=1. */
function chromiumMissing(): string | false {
  if (existsSync(CHROMIUM)) return false;
  const reason = `browser test skipped: no Chromium at ${CHROMIUM}; install Debian's chromium package or set CHROMIUM_PATH (see TESTING.md "The browser test")`;
  if (process.env.REQUIRE_SERVICES === '1') throw new Error(`REQUIRE_SERVICES=1 but ${reason}`);
  return reason;
}

/** What the page sends, with ids the client chose, so the test can find each event in the database. */
interface Plan {
  readonly api: string;
  readonly single: ActivityEvent;
  readonly gzipBatch: readonly ActivityEvent[];
  readonly beaconBatch: readonly ActivityEvent[];
}

/** What the page could read of a fetch's answer, or the error fetch threw (a CORS failure, say). */
type PageAnswer = { status: number; body: unknown; rateLimitRemaining: string | null } | { error: string };

interface PageAnswers {
  readonly single: PageAnswer;
  readonly batch: PageAnswer;
  readonly gzipHead: readonly number[];
}

// The sender runs in an iframe of the host page: removing the iframe unloads it as leaving a page
// does (pagehide, then the beacon), while the host page stays, so Chromium still reports the
// beacon's request to the test. A beacon from an unloading top-level page is not reported over CDP.
const HOST_PAGE = '<!doctype html><meta charset="utf-8"><title>host</title><iframe id="tracker" src="/sender"></iframe>';

function senderPage(plan: Plan): string {
  // `<` escaped so no string in the plan can end the script element.
  const data = JSON.stringify(plan).replace(/</g, '\\u003c');
  return `<!doctype html><meta charset="utf-8"><title>sender</title>
<script type="application/json" id="plan">${data}</script>
<script>
  const plan = JSON.parse(document.getElementById('plan').textContent);

  // What a tracker sends as the page goes away: the one request the browser finishes after unload.
  // A string body is text/plain;charset=UTF-8, a CORS-safelisted type, so it needs no preflight.
  let beaconed = false;
  function sendBeacon(event) {
    if (beaconed) return;
    beaconed = true;
    const queued = navigator.sendBeacon(plan.api + '/api/v1/activities/batch', JSON.stringify({ batch: plan.beaconBatch }));
    sessionStorage.setItem('beacon', JSON.stringify({ on: event.type, queued }));
  }
  document.addEventListener('visibilitychange', (event) => { if (document.visibilityState === 'hidden') sendBeacon(event); });
  addEventListener('pagehide', sendBeacon);

  async function read(send) {
    try {
      const response = await send();
      return { status: response.status, body: await response.json(), rateLimitRemaining: response.headers.get('RateLimit-Remaining') };
    } catch (error) {
      return { error: String(error) };
    }
  }
  async function gzip(text) {
    const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  (async () => {
    // application/json is not a safelisted type, and Content-Encoding not a safelisted header:
    // both fetches are preflighted.
    const single = await read(() => fetch(plan.api + '/api/v1/activities', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(plan.single),
    }));
    const compressed = await gzip(JSON.stringify({ batch: plan.gzipBatch }));
    const batch = await read(() => fetch(plan.api + '/api/v1/activities/batch', {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }, body: compressed,
    }));
    window.answers = { single, batch, gzipHead: [compressed[0], compressed[1]] };
  })();
</script>`;
}

/** The pages' own origin: another port than the API's, so every request to the API is cross-origin. */
async function servePages(plan: () => Plan): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    // Chromium asks for one; a 404 would only add noise to the console lines a failure prints.
    if (req.url === '/favicon.ico') return void res.writeHead(204).end();
    const page = req.url === '/' ? HOST_PAGE : req.url === '/sender' ? senderPage(plan()) : undefined;
    res.writeHead(page === undefined ? 404 : 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(page ?? '');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

interface RequestLine {
  readonly method: string;
  readonly route: string;
  readonly status: number;
}

/** The API's own account of each answer on an ingestion route: `{"msg":"request",method,route,status}`. */
function ingestionLog(system: TestSystem): string[] {
  const lines: string[] = [];
  for (const line of system.api!.logs) {
    let entry: Partial<RequestLine> & { msg?: string };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    if (entry.msg === 'request' && entry.route?.startsWith('/api/')) lines.push(`${entry.method} ${entry.route} ${entry.status}`);
  }
  return lines.sort();
}

const skip = servicesMissing('RABBITMQ_URL', 'DATABASE_URL') || chromiumMissing();

describe('a page on another origin, in headless Chromium', { skip }, () => {
  let browser: Browser;
  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: WAIT_MS });
  });
  after(() => browser?.close());

  for (const runtime of selectedRuntimes()) {
    describe(`against the API on ${runtime}`, { skip: runtimeMissing(runtime) }, () => {
      let system: TestSystem;
      let pages: { server: Server; origin: string };
      let context: BrowserContext;
      let page: Page;
      let plan: Plan;
      const pings: { url: string; method: string; contentType: string | undefined }[] = [];
      const consoleLines: string[] = [];
      const seen = () => `browser console:\n${consoleLines.join('\n') || '(nothing)'}\nAPI log:\n${system.api?.logs.slice(-30).join('\n')}`;

      before(async () => {
        system = new TestSystem(runtime);
        await Promise.all([system.startApi(), system.startConsumer()]);
        const events = Array.from({ length: 1 + 20 + 10 }, (_, i) => event(i));
        plan = { api: `http://127.0.0.1:${system.api!.port}`, single: events[0]!, gzipBatch: events.slice(1, 21), beaconBatch: events.slice(21) };
        pages = await servePages(() => plan);
        // A context of its own per runtime: its own preflight cache, so each preflight reaches this API.
        context = await browser.newContext();
        context.setDefaultTimeout(WAIT_MS);
        context.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
        context.on('weberror', (error) => consoleLines.push(`page error: ${error.error().message}`));
        context.on('request', (request) => {
          if (request.resourceType() === 'ping') pings.push({ url: request.url(), method: request.method(), contentType: request.headers()['content-type'] });
        });
        page = await context.newPage();
      });
      after(async () => {
        await context?.close();
        pages?.server.closeAllConnections();
        pages?.server.close();
        await system?.stop();
      });

      test('the page reads 202 and its ids for a JSON event and a gzip batch, each after a preflight answered 204', async () => {
        await page.goto(`${pages.origin}/`);
        const sender = page.frame({ url: `${pages.origin}/sender` });
        assert.ok(sender, 'the sender iframe loaded');
        const answers = (await (await sender.waitForFunction('window.answers')).jsonValue()) as PageAnswers;

        assert.deepEqual(answers.gzipHead, [0x1f, 0x8b], 'CompressionStream produced a gzip member');
        const { single, batch } = answers;
        assert.ok(!('error' in single) && !('error' in batch), `fetch failed in the page: ${JSON.stringify(answers)}\n${seen()}`);
        assert.deepEqual({ status: single.status, body: single.body }, { status: 202, body: { status: 'accepted', id: plan.single.id } });
        assert.deepEqual({ status: batch.status, body: batch.body }, { status: 202, body: { status: 'accepted', ids: plan.gzipBatch.map((e) => e.id) } });
        // Only Access-Control-Expose-Headers lets a script read a header that is not safelisted.
        assert.match(single.rateLimitRemaining ?? '', /^\d+$/, 'the page can read RateLimit-Remaining');

        const preflights = ['OPTIONS /api/v1/activities 204', 'OPTIONS /api/v1/activities/batch 204'];
        await waitFor('both preflights in the API log', () => preflights.every((line) => ingestionLog(system).includes(line)), WAIT_MS, seen);
      });

      test('the page sends a batch with navigator.sendBeacon as it goes away, as text/plain and without a preflight', async () => {
        await page.evaluate("document.getElementById('tracker').remove()");
        // The sender's note, in the sessionStorage it shares with the host page (same origin).
        const note = (await page.evaluate("sessionStorage.getItem('beacon')")) as string | null;
        assert.ok(note !== null, 'neither pagehide nor visibilitychange reached the sender');
        const record = JSON.parse(note) as { on: string; queued: boolean };
        assert.equal(record.queued, true, 'sendBeacon queued the batch');
        assert.ok(['pagehide', 'visibilitychange'].includes(record.on), `sent on ${record.on}`);

        await waitFor("Chromium's report of the beacon request", () => pings.length > 0, WAIT_MS, seen);
        assert.deepEqual(pings, [{ url: `${plan.api}/api/v1/activities/batch`, method: 'POST', contentType: 'text/plain;charset=UTF-8' }]);

        // Two preflights in all (the two fetches above): the beacon needed none.
        const expected = [
          'OPTIONS /api/v1/activities 204',
          'OPTIONS /api/v1/activities/batch 204',
          'POST /api/v1/activities 202',
          'POST /api/v1/activities/batch 202',
          'POST /api/v1/activities/batch 202',
        ];
        await waitFor('the beacon answered in the API log', () => ingestionLog(system).length >= expected.length, WAIT_MS, seen);
        assert.deepEqual(ingestionLog(system), expected);
      });

      test('stores every event of the three requests exactly once, with its fields', async () => {
        const sent = [plan.single, ...plan.gzipBatch, ...plan.beaconBatch];
        await system.waitForStored(sent.length, WAIT_MS);
        const stored = await system.activities.find().toArray();
        assert.equal(stored.length, sent.length, 'each event once, nothing else');
        const byId = new Map(stored.map((doc) => [doc._id, doc]));
        for (const original of sent) {
          const doc = byId.get(original.id!);
          assert.ok(doc, `event ${original.id} stored`);
          assert.equal(doc.userId, original.userId);
          assert.equal(doc.eventType, original.eventType);
          assert.equal(doc.timestamp.toISOString(), original.timestamp);
          assert.deepEqual(doc.payload, original.payload);
        }
      });
    });
  }
});
