// Three API processes, one Redis of the test's own (tests/support/redisServer.ts), on every
// runtime: one rate limit across the replicas, exact to the request and to the Retry-After second;
// Redis killed under traffic, the replicas limit on their own and never answer 5xx; Redis started
// again, the limit is shared again without anyone restarting anything.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { deleteTopology, serviceUrl, servicesMissing, uniqueName } from '../support/services.ts';
import { runtimeMissing, selectedRuntimes, startReady, stopService, waitFor, type RunningService } from '../support/processes.ts';
import { RedisServer, redisServerMissing } from '../support/redisServer.ts';
import { event } from '../support/system.ts';

const REPLICAS = 3;
const LIMIT = 12;
const WINDOW_MS = 3_000;

interface Answer {
  readonly status: number;
  readonly retryAfter: number | undefined;
  readonly remaining: number | undefined;
  /** Wall-clock send and answer times (Redis TIME is this host's wall clock too). */
  readonly sentAt: number;
  readonly answeredAt: number;
}

async function post(api: RunningService, client: string, index: number): Promise<Answer> {
  const sentAt = Date.now();
  const response = await fetch(`http://127.0.0.1:${api.port}/api/v1/activities`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': client },
    body: JSON.stringify(event(index)),
  });
  await response.arrayBuffer();
  const header = (name: string) => (response.headers.has(name) ? Number(response.headers.get(name)) : undefined);
  return { status: response.status, retryAfter: header('retry-after'), remaining: header('ratelimit-remaining'), sentAt, answeredAt: Date.now() };
}

/** `count` requests from `client`, a round of one per replica at a time. */
async function spread(apis: readonly RunningService[], client: string, count: number): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (let i = 0; i < count; i += apis.length) {
    answers.push(...(await Promise.all(apis.slice(0, count - i).map((api, j) => post(api, client, i + j)))));
  }
  return answers;
}

const statuses = (answers: readonly Answer[]) => answers.map((answer) => answer.status);
const accepted = (answers: readonly Answer[]) => answers.filter((answer) => answer.status === 202);

async function redisState(api: RunningService): Promise<string | undefined> {
  const response = await fetch(`http://127.0.0.1:${api.port}/health`);
  const body = (await response.json()) as { info?: { redis?: string } };
  assert.equal(response.status, 200, 'readiness does not depend on Redis');
  return body.info?.redis;
}

for (const runtime of selectedRuntimes()) {
  describe(`one rate limit across ${REPLICAS} replicas on ${runtime}`, { skip: servicesMissing('RABBITMQ_URL') || redisServerMissing() || runtimeMissing(runtime) }, () => {
    const queue = uniqueName('e2e_shared_limit');
    let redis: RedisServer;
    let apis: RunningService[] = [];
    let clients = 0;
    /** A client address no earlier request of this run used. */
    const newClient = () => `127.20.${Math.floor(clients / 250)}.${(clients++ % 250) + 1}`;

    // A password, so the test can show it never reaches a log line.
    const password = `e2e-secret-${process.pid}`;

    before(async () => {
      redis = await RedisServer.start({ password });
      const env = {
        RABBITMQ_URL: serviceUrl('RABBITMQ_URL'),
        QUEUE_NAME: queue,
        EVENTS_EXCHANGE: queue,
        API_HOST: '127.0.0.1',
        API_PORT: '0',
        TRUST_PROXY: '127.0.0.1',
        LOG_LEVEL: 'info',
        RATE_LIMIT_STORE: 'redis',
        REDIS_URL: redis.url,
        RATE_LIMIT_REDIS_PREFIX: `${queue}:`,
        RATE_LIMIT_MAX_REQUESTS: String(LIMIT),
        RATE_LIMIT_WINDOW_MS: String(WINDOW_MS),
        // These tests count decisions Redis makes. On a busy machine an answer can come later than
        // the default 50 ms, and that request is rightly decided in process (an outage of its own,
        // api/tests/redisLimiter.test.ts); the longest timeout keeps such blips out of the counts.
        RATE_LIMIT_REDIS_TIMEOUT_MS: '1000',
      };
      apis = await Promise.all(Array.from({ length: REPLICAS }, () => startReady('api', runtime, env)));
      await waitFor('every replica to share the limit', async () => (await Promise.all(apis.map(redisState))).every((state) => state === 'up'), 10_000);
    });

    after(async () => {
      await Promise.all(apis.map((api) => stopService(api)));
      await redis.stop();
      await deleteTopology(queue);
    });

    test('one client over three replicas gets exactly the limit, every 429 with an exact Retry-After; another client is unaffected', async () => {
      const client = newClient();
      const answers = await spread(apis, client, 3 * LIMIT);
      assert.equal(accepted(answers).length, LIMIT, `statuses: ${statuses(answers)}`);
      assert.ok(answers.every((answer) => answer.status === 202 || answer.status === 429), `statuses: ${statuses(answers)}`);
      // One log in Redis: the replicas' 202s counted down through one sequence, not three.
      assert.deepEqual(accepted(answers).map((answer) => answer.remaining).sort((a, b) => a! - b!), Array.from({ length: LIMIT }, (_, i) => i));

      // The oldest request, which every 429 waits for, was decided between its send and answer;
      // each 429 between its own. Retry-After must be whole seconds from one to the other.
      const first = accepted(answers).reduce((a, b) => (b.sentAt < a.sentAt ? b : a));
      for (const refused of answers.filter((answer) => answer.status === 429)) {
        const lowest = Math.max(1, Math.ceil((first.sentAt + WINDOW_MS - (refused.answeredAt + 1)) / 1000));
        const highest = Math.max(1, Math.ceil((first.answeredAt + 1 + WINDOW_MS - refused.sentAt) / 1000));
        assert.ok(refused.retryAfter! >= lowest && refused.retryAfter! <= highest, `Retry-After ${refused.retryAfter} outside [${lowest}, ${highest}]`);
        assert.equal(refused.remaining, 0);
      }

      const other = await spread(apis, newClient(), LIMIT);
      assert.deepEqual(statuses(other), Array(LIMIT).fill(202), 'another client has a limit of its own');

      // Exactly Retry-After seconds after the last refusal, a request is let in on any replica.
      const last = answers.at(-1)!;
      await new Promise((resolve) => setTimeout(resolve, last.answeredAt + last.retryAfter! * 1000 - Date.now()));
      assert.equal((await post(apis[0]!, client, 0)).status, 202);
    });

    test('Redis killed mid-run: every answer is 202 or 429, each replica limits alone; started again, the limit is shared again', async () => {
      // Traffic through the whole outage: five clients, round robin over the replicas.
      const stream: Answer[] = [];
      let streaming = true;
      const streamClients = Array.from({ length: 5 }, newClient);
      const streamed = (async () => {
        for (let i = 0; streaming; i++) {
          stream.push(...(await Promise.all(apis.map((api, j) => post(api, streamClients[(i + j) % streamClients.length]!, i).catch(() => ({ status: 0 }) as Answer)))));
        }
      })();
      // A failing assertion must stop the traffic too, or the loop would outlive the test.
      try {
        await waitFor('traffic before the kill', () => stream.length >= 30, 10_000);

        await redis.kill();
        await waitFor('every replica to see Redis down', async () => (await Promise.all(apis.map(redisState))).every((state) => state === 'down'), 10_000);
        const killedAt = stream.length;
        const alone = await spread(apis, newClient(), 3 * LIMIT + 3);
        assert.equal(accepted(alone).length, 3 * LIMIT, `each replica allows the limit on its own: ${statuses(alone)}`);
        await waitFor('traffic during the outage', () => stream.length >= killedAt + 30, 10_000);

        await redis.restart();
        // The stream's requests ask Redis again; each replica is up once one of them is answered.
        await waitFor('every replica to share the limit again', async () => (await Promise.all(apis.map(redisState))).every((state) => state === 'up'), 15_000);
      } finally {
        streaming = false;
        await streamed;
      }
      assert.deepEqual([...new Set(statuses(stream))].filter((status) => status !== 202 && status !== 429), [], 'nothing but 202 and 429');

      const shared = await spread(apis, newClient(), 3 * LIMIT);
      assert.equal(accepted(shared).length, LIMIT, `shared again: ${statuses(shared)}`);
      for (const api of apis) {
        // Each switch is logged once, so the lines alternate, an outage then its recovery; the kill
        // made at least one pair. A slow answer on a busy machine is an outage of its own, one more pair.
        const switches = api.logs.flatMap((line) => {
          const msg = /"msg":"([^"]*)"/.exec(line)?.[1] ?? '';
          return msg.startsWith('rate limit store unavailable') ? ['down'] : msg.startsWith('rate limit store answering again') ? ['up'] : [];
        });
        assert.ok(switches.length >= 2 && switches.every((state, i) => state === (i % 2 === 0 ? 'down' : 'up')), `each outage and recovery logged once, in turn: ${switches.join(', ')}`);
        assert.ok(api.logs.every((line) => !line.includes(password)), 'the password of REDIS_URL is in no log line');
      }
    });
  });
}
