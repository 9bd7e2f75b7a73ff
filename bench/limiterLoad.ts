// Rate limiter effectiveness under load, against the running API with the default 50 / 60 s
// policy: 100 client addresses in 127.0.0.0/8 at full speed (real source addresses, no proxy
// header), then legitimate clients' latency with and without one address flooding.
// Usage: RABBITMQ_URL=... node --import tsx bench/limiterLoad.ts   (BENCH_RUNTIME, BENCH_PER_ADDRESS)
import http from 'node:http';
import { clearQueues, median, requireEnv, startReady, stopService, table, type Runtime } from './support.ts';

const rabbitmqUrl = requireEnv('RABBITMQ_URL');
const runtime = (process.env.BENCH_RUNTIME ?? 'node20-tsx') as Runtime;
const perAddress = Number(process.env.BENCH_PER_ADDRESS ?? 200);
const body = JSON.stringify({ userId: 'u-1', eventType: 'page_view', timestamp: '2023-10-27T10:00:00Z', payload: { page: '/' } });

interface Result {
  readonly status: number;
  readonly retryAfter: number | undefined;
  readonly ms: number;
  /** Wall-clock send and answer times: the server decided somewhere in between. */
  readonly sentAt: number;
  readonly answeredAt: number;
}

function post(port: number, localAddress: string, agent: http.Agent): Promise<Result> {
  const started = performance.now();
  const sentAt = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/api/v1/activities', method: 'POST', localAddress, agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => {
          const header = res.headers['retry-after'];
          resolve({ status: res.statusCode!, retryAfter: header === undefined ? undefined : Number(header), ms: performance.now() - started, sentAt, answeredAt: Date.now() });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** `count` requests from one address, `parallel` at a time, as fast as answers come back. */
async function flood(port: number, address: string, count: number, parallel: number): Promise<Result[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: parallel });
  const results: Result[] = [];
  let sent = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (sent < count) {
        sent += 1;
        results.push(await post(port, address, agent));
      }
    }),
  );
  agent.destroy();
  return results;
}

const queue = `bench_limiter_${process.pid}`;
const api = await startReady('api', runtime, { RABBITMQ_URL: rabbitmqUrl, QUEUE_NAME: queue, EVENTS_EXCHANGE: queue, API_HOST: '127.0.0.1', API_PORT: '0', LOG_LEVEL: 'info' });
try {
  // 1. 100 addresses at full speed.
  const addresses = Array.from({ length: 100 }, (_, i) => `127.0.1.${i + 1}`);
  const started = performance.now();
  const perClient = await Promise.all(addresses.map((address) => flood(api.port, address, perAddress, 4)));
  const seconds = (performance.now() - started) / 1000;
  const all = perClient.flat();
  const rejected = all.filter((r) => r.status === 429);
  // Retry-After is correct when it is the whole seconds, rounded up, from the 429 until the
  // address's first accepted request leaves the 60 s window. The server saw that request somewhere
  // between its send and answer times, and decided the 429 between its own; the answer must fall
  // within the bounds those intervals allow.
  let retryAfterWrong = 0;
  for (const results of perClient) {
    const accepted = results.filter((r) => r.status === 202);
    const first = accepted.reduce((a, b) => (b.sentAt < a.sentAt ? b : a));
    for (const r of results.filter((x) => x.status === 429)) {
      const lowest = Math.max(1, Math.ceil((first.sentAt + 60_000 - r.answeredAt) / 1000));
      const highest = Math.ceil((first.answeredAt + 60_000 - r.sentAt) / 1000);
      if (r.retryAfter === undefined || r.retryAfter < lowest || r.retryAfter > highest) retryAfterWrong += 1;
    }
  }
  const acceptedPerAddress = perClient.map((results) => results.filter((r) => r.status === 202).length);
  table(`Limiter effectiveness: 100 addresses x ${perAddress} requests at full speed (${runtime})`, [
    { measure: 'addresses with exactly 50 accepted', value: acceptedPerAddress.filter((n) => n === 50).length },
    { measure: 'min / max accepted per address', value: `${Math.min(...acceptedPerAddress)} / ${Math.max(...acceptedPerAddress)}` },
    { measure: 'other statuses (not 202/429)', value: all.filter((r) => r.status !== 202 && r.status !== 429).length },
    { measure: '429s', value: rejected.length },
    { measure: '429s whose Retry-After is outside the bounds their timing allows', value: retryAfterWrong },
    { measure: 'requests answered per second (all)', value: all.length / seconds },
    { measure: '429 latency p50 ms', value: median(rejected.map((r) => r.ms)) },
    { measure: '202 latency p50 ms', value: median(all.filter((r) => r.status === 202).map((r) => r.ms)) },
  ]);

  // 2. Legitimate clients' latency, quiet and while one address floods.
  const legit = async (prefix: string) => {
    const agent = new http.Agent({ keepAlive: true });
    const samples: number[] = [];
    for (let i = 0; i < 40; i++) for (let c = 1; c <= 10; c++) samples.push((await post(api.port, `${prefix}.${c}`, agent)).ms);
    agent.destroy();
    return samples.sort((a, b) => a - b);
  };
  const quiet = await legit('127.0.2');
  let flooding = true;
  const attacker = (async () => {
    let floodCount = 0;
    while (flooding) floodCount += (await flood(api.port, '127.0.3.1', 500, 16)).length;
    return floodCount;
  })();
  const floodStarted = performance.now();
  const loaded = await legit('127.0.4');
  flooding = false;
  const floodRequests = await attacker;
  const p = (values: number[], q: number) => values[Math.min(values.length - 1, Math.floor(values.length * q))]!;
  table('Legitimate clients (10 addresses x 40 sequential requests) with and without one flooding address', [
    { case: 'quiet', 'p50 ms': p(quiet, 0.5), 'p99 ms': p(quiet, 0.99), 'flood req/s': 0 },
    { case: 'one address flooding', 'p50 ms': p(loaded, 0.5), 'p99 ms': p(loaded, 0.99), 'flood req/s': floodRequests / ((performance.now() - floodStarted) / 1000) },
  ]);
} finally {
  await stopService(api);
  await clearQueues(rabbitmqUrl, 'delete', queue, `${queue}.dead`);
}
