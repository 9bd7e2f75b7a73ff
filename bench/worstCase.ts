// The longest a single request holds the API's event loop, per route (issue 21; BENCHMARKS.md
// "Worst-case requests"). The API runs as deployed (api/src/server.ts, RabbitMQ behind it) with
// tests/support/loopProbe.ts preloaded, and gets every body of tests/support/hostileBodies.ts in
// turn, one at a time; a body's block is the median of its runs, a route's the worst of its bodies.
// Usage: RABBITMQ_URL=... node --import tsx bench/worstCase.ts [the checkout whose API to run, default this one]
//   BENCH_RUNTIMES (default node26,bun), BENCH_RUNS (default 3)
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import amqp from 'amqplib';
import { loadConfig } from '../api/src/config.ts';
import { hostileRoutes } from '../tests/support/hostileBodies.ts';
import { root, waitFor } from '../tests/support/processes.ts';
import { median, requireEnv, table } from './support.ts';

type Runtime = 'node20-tsx' | 'node26' | 'bun';

const rabbitmqUrl = requireEnv('RABBITMQ_URL');
const tree = resolve(process.argv[2] ?? root);
const runtimes = (process.env.BENCH_RUNTIMES ?? 'node26,bun').split(',') as Runtime[];
const runs = Number(process.env.BENCH_RUNS ?? 3);
const probe = resolve(root, 'tests/support/loopProbe.ts');
const bin = resolve(root, 'node_modules/.bin');

function command(runtime: Runtime): string[] {
  if (runtime === 'node26') return [resolve(root, 'tests/node26/node_modules/.bin/node'), '--import', probe, 'api/src/server.ts'];
  if (runtime === 'bun') return [resolve(bin, 'bun'), '--preload', probe, 'api/src/server.ts'];
  return ['node', '--import', 'tsx', '--import', probe, 'api/src/server.ts'];
}

/** The API of `tree` on `runtime`, its port, and a way to ask its probe. */
async function startApi(runtime: Runtime, queue: string) {
  const [file, ...args] = command(runtime);
  const child: ChildProcess = spawn(file!, args, {
    cwd: tree,
    env: {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: process.env.HOME ?? '/tmp',
      RABBITMQ_URL: rabbitmqUrl,
      QUEUE_NAME: queue,
      EVENTS_EXCHANGE: queue,
      API_HOST: '127.0.0.1',
      API_PORT: '0',
      LOG_LEVEL: 'info',
      RATE_LIMIT_MAX_REQUESTS: '1000000000',
      // wrk's connections all come from one address.
      MAX_CONNECTIONS_PER_CLIENT: '1000000',
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const waiting: Array<(blockMs: number) => void> = [];
  let port: number | undefined;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const entry = JSON.parse(line) as { msg?: string; port?: number; probe?: string; loopBlockMs?: number };
    if (entry.probe !== undefined) waiting.shift()?.(entry.loopBlockMs!);
    else if (entry.msg === 'listening') port = entry.port;
  });
  const ask = (what: 'reset' | 'read') =>
    new Promise<number>((answered) => {
      waiting.push(answered);
      child.stdin!.write(`${what}\n`);
    });
  await waitFor(`the API on ${runtime} to listen`, async () => port !== undefined, 30_000, () => '');
  const ready = async () => (await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => undefined))?.status === 200;
  await waitFor(`the API on ${runtime} to be ready`, ready, 30_000, () => '');
  return { child, url: `http://127.0.0.1:${port}`, ask };
}

async function clearQueue(queue: string, how: 'purge' | 'delete'): Promise<void> {
  const connection = await amqp.connect(rabbitmqUrl);
  try {
    // One channel each: a name that does not exist closes the channel it was asked on.
    for (const name of [queue, `${queue}.dead`]) {
      const channel = await connection.createChannel();
      await (how === 'purge' ? channel.purgeQueue(name) : channel.deleteQueue(name)).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
    if (how === 'delete') {
      const channel = await connection.createChannel();
      await channel.deleteExchange(queue).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
  } finally {
    await connection.close();
  }
}

const config = loadConfig({ RABBITMQ_URL: rabbitmqUrl });
console.log(`# worst event-loop block per request, the API of ${tree}, ${runs} runs a body`);
for (const runtime of runtimes) {
  const queue = `bench_worst_case_${process.pid}`;
  const api = await startApi(runtime, queue);
  const rows: Record<string, string | number>[] = [];
  try {
    for (const route of hostileRoutes(config)) {
      let worst = { blockMs: -1, name: '', status: 0 };
      let failures = 0;
      let realisticMs = 0;
      for (const request of route.requests()) {
        const blocks: number[] = [];
        let status = 0;
        for (let run = 0; run < runs; run++) {
          await api.ask('reset');
          const answer = await fetch(`${api.url}${route.path}`, { method: 'POST', headers: request.headers, body: request.body });
          await answer.arrayBuffer();
          status = answer.status;
          if (status >= 500) failures += 1;
          blocks.push(await api.ask('read'));
        }
        const blockMs = median(blocks);
        if (request.name.startsWith('realistic events')) realisticMs = Math.max(realisticMs, blockMs);
        if (blockMs > worst.blockMs) worst = { blockMs, name: request.name, status };
      }
      rows.push({ route: route.path, 'worst block (ms)': worst.blockMs, 'its body': worst.name, answer: worst.status, 'realistic events (ms)': realisticMs, '5xx answers': failures });
      await clearQueue(queue, 'purge');
    }
  } finally {
    api.child.kill('SIGTERM');
    await clearQueue(queue, 'delete');
  }
  table(`${runtime}: the longest one request held the event loop, per route`, rows);
}
