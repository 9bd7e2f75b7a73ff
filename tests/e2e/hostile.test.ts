// Hostile input against the running API: a seeded fuzz of bodies, content types and stalled
// uploads; slow clients; one address flooding while others carry on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import amqp from 'amqplib';
import { parseDelivery } from '../../consumer/src/services/activityProcessor.ts';
import { servicesMissing, serviceUrl } from '../support/services.ts';
import { runtimeMissing, selectedRuntimes, startReady, stopService, waitFor, type RunningService } from '../support/processes.ts';
import { event } from '../support/system.ts';
import { uniqueName } from '../support/services.ts';
import { prng } from '../support/prng.ts';

const CASES = Number(process.env.FUZZ_CASES ?? 2000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261122);
const MAX_BODY_BYTES = 4096;
const DOCUMENTED = new Set([202, 400, 413, 415]);

interface Case {
  readonly name: string;
  readonly contentType: string | undefined;
  readonly body: Buffer;
  /** Send this many bytes, then stall and abort: a chunked upload that never finishes. */
  readonly stallAfter?: number;
  /** The batch route instead of the single-event one. */
  readonly batch?: boolean;
  readonly encoding?: string;
}

function fuzzCase(random: () => number, index: number): Case {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const valid = event(index) as unknown as Record<string, unknown>;
  const json = (value: unknown, contentType = 'application/json') => ({ contentType, body: Buffer.from(JSON.stringify(value)) });
  const deep = (depth: number): unknown => (depth === 0 ? 1 : { a: deep(depth - 1) });
  const raw = (text: string) => ({ contentType: 'application/json', body: Buffer.from(text) });
  const kinds: Record<string, () => Omit<Case, 'name'>> = {
    valid: () => json(valid),
    truncated: () => {
      const text = JSON.stringify(valid);
      return { contentType: 'application/json', body: Buffer.from(text.slice(0, Math.floor(random() * text.length))) };
    },
    deepPayload: () => json({ ...valid, payload: deep(20 + Math.floor(random() * 40)) }),
    deepTopLevel: () => ({ contentType: 'application/json', body: Buffer.from('['.repeat(5000) + ']'.repeat(5000)) }),
    hugeString: () => json({ ...valid, userId: 'x'.repeat(200 + Math.floor(random() * 400)) }),
    wrongTypes: () => json({ ...valid, [pick(['userId', 'eventType', 'timestamp', 'payload', 'id'])]: pick([1, null, true, [], {}, '', 'x']) }),
    protoKeys: () => ({
      contentType: 'application/json',
      body: Buffer.from(`{"userId":"u","eventType":"e","timestamp":"2023-10-27T10:00:00Z","payload":{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}}}${pick(['', ',"__proto__":{"admin":true}'])}}`),
    }),
    dollarKeys: () => json({ ...valid, payload: { $where: '1', nested: { $gt: 1 } } }),
    invalidUtf8: () => ({ contentType: 'application/json', body: Buffer.concat([Buffer.from('{"userId":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('","eventType":"e","timestamp":"2023-10-27T10:00:00Z","payload":{}}')]) }),
    oddContentType: () => ({ ...json(valid), contentType: pick([undefined, 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'multipart/form-data; boundary=x', 'application/jsonx']) }),
    oversized: () => json({ ...valid, payload: { blob: 'y'.repeat(MAX_BODY_BYTES + Math.floor(random() * 10_000)) } }),
    randomBytes: () => ({ contentType: 'application/json', body: Buffer.from(Array.from({ length: Math.floor(random() * 200) }, () => Math.floor(random() * 256))) }),
    badTimestamp: () => json({ ...valid, timestamp: pick(['2023-02-30T10:00:00Z', '2023-10-27T24:00:00Z', '2023-10-27T10:00:00', '2023-13-01T00:00:00Z', '27/10/2023', '2023-10-27T10:00:00+25:00']) }),
    unknownField: () => json({ ...valid, extra: 1 }),
    notObject: () => json(pick([[], 'text', 42, null, true])),
    // What the database would alter or refuse, written as JSON text so 1e400 and \ud800 reach the API as such.
    nulKey: () => raw(`{"userId":"u","eventType":"e","timestamp":"2023-10-27T10:00:00Z","payload":{"a\\u0000b":1}}`),
    dotKey: () => json({ ...valid, payload: { nested: { 'a.b': 1 } } }),
    loneSurrogate: () => raw(`{"userId":${pick(['"u"', '"\\ud800"'])},"eventType":"e","timestamp":"2023-10-27T10:00:00Z","payload":{${pick(['"k":"\\udc00"', '"\\ud800":1'])}}}`),
    hugeNumber: () => raw(`{"userId":"u","eventType":"e","timestamp":"2023-10-27T10:00:00Z","payload":{"n":${pick(['1e400', '-1e400', '12345678901234567890', '9007199254740992'])}}}`),
    blankOrInvisibleId: () => json({ ...valid, [pick(['userId', 'eventType'])]: pick(['   ', '\u00a0', '\u3000', 'a\u200bb', 'a\u2028b', 'rtl\u202e', '\ufeff']) }),
    stalledChunked: () => ({ ...json(valid), stallAfter: 10 }),
    // Batches and compressed bodies: the same rules, behind a decoder and an index.
    batch: () => ({ ...json({ batch: Array.from({ length: 1 + Math.floor(random() * 5) }, (_, i) => event(index * 10 + i)) }), batch: true }),
    badBatch: () => ({ ...json({ batch: pick([[], [valid, { ...valid, userId: '' }], 'x', [1], null]) }), batch: true }),
    gzip: () => ({ ...json(valid), body: gzipSync(JSON.stringify(valid)), encoding: 'gzip' }),
    gzipBatch: () => ({ ...json({ batch: [valid] }), body: gzipSync(JSON.stringify({ batch: [valid] })), encoding: 'gzip', batch: true }),
    brotli: () => ({ ...json(valid), body: brotliCompressSync(JSON.stringify(valid)), encoding: 'br' }),
    bomb: () => ({ ...json(valid), body: gzipSync(Buffer.alloc(MAX_BODY_BYTES * (5 + Math.floor(random() * 50)))), encoding: 'gzip', batch: random() < 0.5 }),
    corruptCompressed: () => ({ ...json(valid), body: Buffer.from(Array.from({ length: 40 }, () => Math.floor(random() * 256))), encoding: pick(['gzip', 'deflate', 'br']) }),
    oddEncoding: () => ({ ...json(valid), encoding: pick(['compress', 'gzip, gzip', 'zstd', 'identity']) }),
  };
  const name = pick(Object.keys(kinds));
  return { name, ...kinds[name]!() };
}

interface Reply {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly body: string;
}

function send(port: number, testCase: Case, index: number, agent: http.Agent): Promise<Reply | 'aborted'> {
  return new Promise((resolve, reject) => {
    // A client address per case, so the default 50-per-minute limit never answers for the validator.
    const headers: Record<string, string> = { 'x-forwarded-for': `127.5.${(index >> 8) & 255}.${index & 255}` };
    if (testCase.contentType !== undefined) headers['content-type'] = testCase.contentType;
    if (testCase.encoding !== undefined) headers['content-encoding'] = testCase.encoding;
    const path = testCase.batch === true ? '/api/v1/activities/batch' : '/api/v1/activities';
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, contentType: res.headers['content-type'], body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => (testCase.stallAfter !== undefined || error.code === 'ECONNRESET' || error.code === 'EPIPE' ? resolve('aborted') : reject(error)));
    if (testCase.stallAfter !== undefined) {
      req.write(testCase.body.subarray(0, testCase.stallAfter));
      setImmediate(() => req.destroy());
    } else {
      req.end(testCase.body);
    }
  });
}

interface Answer {
  readonly status: number;
  readonly retryAfter: string | undefined;
}

const statuses = (answers: readonly Answer[]) => answers.map((answer) => answer.status).join(',');

/** POSTs one valid event as client `address` (X-Forwarded-For, from the trusted proxy) over `agent`'s sockets. */
function postEvent(port: number, address: string, agent: http.Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'application/json', 'x-forwarded-for': address };
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/v1/activities', headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(event(2)));
  });
}

/** Takes every message off `queue` (or, with `remove`, deletes it, its dead-letter queue and its exchange). */
async function drain(queue: string, remove = false): Promise<amqp.GetMessage[]> {
  const connection = await amqp.connect(serviceUrl('RABBITMQ_URL'));
  try {
    const channel = await connection.createChannel();
    const messages: amqp.GetMessage[] = [];
    for (let message = await channel.get(queue, { noAck: true }); message !== false; message = await channel.get(queue, { noAck: true })) messages.push(message);
    if (remove) await Promise.all([channel.deleteQueue(queue), channel.deleteQueue(`${queue}.dead`), channel.deleteExchange(queue)]);
    return messages;
  } finally {
    await connection.close();
  }
}

for (const runtime of selectedRuntimes()) {
  describe(`hostile input on ${runtime}`, { skip: servicesMissing('RABBITMQ_URL') || runtimeMissing(runtime) }, () => {
    const queue = uniqueName('hostile');
    let api: RunningService;
    before(async () => {
      api = await startReady('api', runtime, {
        RABBITMQ_URL: serviceUrl('RABBITMQ_URL'),
        QUEUE_NAME: queue,
        EVENTS_EXCHANGE: queue,
        API_HOST: '127.0.0.1',
        API_PORT: '0',
        // The test is the proxy in front of every client (X-Forwarded-For), listed as OPERATIONS.md
        // recommends: its connections count under no single client's cap.
        TRUST_PROXY: '127.0.0.1',
        MAX_BODY_BYTES: String(MAX_BODY_BYTES),
        MAX_BATCH_BODY_BYTES: String(4 * MAX_BODY_BYTES),
        HEADERS_TIMEOUT_MS: '1000',
        REQUEST_TIMEOUT_MS: '2000',
        LOG_LEVEL: 'info',
      });
    });
    after(async () => {
      await stopService(api);
      await drain(queue, true);
    });

    test(`${CASES} seeded fuzz cases: documented statuses only, problem+json, nothing invalid queued, still healthy`, async () => {
      const random = prng(SEED);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
      let accepted = 0;
      let limitedOrUnavailable = 0;
      for (let i = 0; i < CASES; i += 8) {
        const cases = Array.from({ length: Math.min(8, CASES - i) }, (_, j) => fuzzCase(random, i + j));
        const replies = await Promise.all(cases.map((c, j) => send(api.port, c, i + j, agent)));
        replies.forEach((reply, j) => {
          const where = `case ${i + j} (${cases[j]!.name}, FUZZ_SEED=${SEED})`;
          if (reply === 'aborted') return;
          if (reply.status === 429 || reply.status === 503) limitedOrUnavailable += 1;
          assert.ok(DOCUMENTED.has(reply.status), `${where}: undocumented status ${reply.status}: ${reply.body}`);
          if (reply.status === 202) return void (accepted += (JSON.parse(reply.body) as { ids?: string[] }).ids?.length ?? 1);
          assert.match(reply.contentType ?? '', /^application\/problem\+json(;|$)/, where);
          const problem = JSON.parse(reply.body) as { status: number; title: string };
          assert.equal(problem.status, reply.status, where);
          assert.equal(typeof problem.title, 'string', where);
        });
      }
      agent.destroy();
      assert.equal(limitedOrUnavailable, 0);
      assert.equal(({} as Record<string, unknown>).polluted, undefined, 'the test process prototype is untouched');

      const health = await fetch(`http://127.0.0.1:${api.port}/health`);
      assert.equal(health.status, 200, 'still healthy after the fuzz');
      assert.equal(api.child.exitCode, null, 'the API process is still running');

      const queued = await drain(queue);
      assert.equal(queued.length, accepted, 'exactly the accepted events were queued');
      for (const message of queued) {
        const parsed = parseDelivery(message);
        assert.equal(parsed.verdict, 'activity', `a queued message fails the consumer's contract: ${parsed.verdict === 'rejected' ? parsed.reason : ''}`);
      }
    });

    test('slow clients are cut by the server timeouts while others are served', { timeout: 20_000 }, async () => {
      const slowHeaders = net.connect(api.port, '127.0.0.1');
      slowHeaders.write('POST /api/v1/activities HTTP/1.1\r\nHost: x\r\n');
      const trickle = setInterval(() => slowHeaders.write('X'), 100);
      const slowBody = net.connect(api.port, '127.0.0.1');
      slowBody.write('POST /api/v1/activities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"userId":');
      slowHeaders.on('error', () => {});
      slowBody.on('error', () => {});
      const bodyAnswer: Buffer[] = [];
      slowBody.on('data', (chunk: Buffer) => bodyAnswer.push(chunk));

      const meanwhile = await fetch(`http://127.0.0.1:${api.port}/api/v1/activities`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': '127.5.0.2' },
        body: JSON.stringify(event(1)),
      });
      assert.equal(meanwhile.status, 202, 'another client is served while two slow ones hold sockets');
      assert.equal(slowHeaders.destroyed || slowBody.destroyed, false, 'the slow clients are still connected at that point');

      // `once` would reject on the EPIPE a write to the cut socket raises; only 'close' matters here.
      await Promise.all([slowHeaders, slowBody].map((socket) => new Promise((closed) => socket.on('close', closed))));
      clearInterval(trickle);
      const answer = Buffer.concat(bodyAnswer).toString();
      assert.match(answer, /^HTTP\/1\.1 408 /, 'the stalled body is answered 408 before the cut');
      assert.match(answer, /"type":"\/problems\/body-timeout"/);
    });

    test('one address flooding does not change the answers other addresses get', async () => {
      // Keep-alive agents with a few sockets each, as real clients have, and under the per-client
      // connection cap, which counts this test's one peer address: the property is about addresses,
      // not about how many sockets a busy machine can read within HEADERS_TIMEOUT_MS.
      const floodAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
      const othersAgent = new http.Agent({ keepAlive: true, maxSockets: 10 });
      try {
        const flood = Promise.all(Array.from({ length: 600 }, () => postEvent(api.port, '127.6.6.6', floodAgent)));
        const others = Promise.all(Array.from({ length: 100 }, (_, i) => postEvent(api.port, `127.7.0.${(i % 10) + 1}`, othersAgent)));
        const [floodAnswers, otherAnswers] = await Promise.all([flood, others]);

        // An overloaded API may shed a request (503 with Retry-After, issue 21): never time it out,
        // and never answer another address from the flooder's window.
        const shedOrAnswered = (answer: Answer) => answer.status !== 503 || answer.retryAfter !== undefined;
        assert.ok(otherAnswers.every((answer) => (answer.status === 202 || answer.status === 503) && shedOrAnswered(answer)), `others: ${statuses(otherAnswers)}`);
        assert.ok(floodAnswers.every((answer) => [202, 429, 503].includes(answer.status) && shedOrAnswered(answer)), `flood: ${statuses(floodAnswers)}`);
        // Shedding comes before the rate limit, so the flood's window holds exactly what was not shed.
        const shed = floodAnswers.filter((answer) => answer.status === 503).length;
        assert.equal(floodAnswers.filter((answer) => answer.status === 202).length, Math.min(50, 600 - shed));
        assert.equal(floodAnswers.filter((answer) => answer.status === 429).length, Math.max(0, 550 - shed));

        // What was shed of the others, sent again once the flood is answered: their windows hold at
        // most ten each, so everything is accepted.
        for (const [i, answer] of otherAnswers.entries()) {
          if (answer.status !== 503) continue;
          const address = `127.7.0.${(i % 10) + 1}`;
          let again: Answer | undefined;
          await waitFor(`a shed request of ${address} to be answered`, async () => (again = await postEvent(api.port, address, othersAgent)).status !== 503, 10_000);
          assert.equal(again!.status, 202, `${address} sent again`);
        }
      } finally {
        floodAgent.destroy();
        othersAgent.destroy();
      }
    });
  });
}
