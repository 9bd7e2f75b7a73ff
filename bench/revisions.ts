// One change at a time: the API as of each git revision given (Node 26 by default), and the two
// Fastify peers (bare, and like for like), under the side-by-side load in alternating rounds; the median CPU per request and req/s of
// each. BENCHMARKS.md gives each performance change's effect from this.
// Usage: RABBITMQ_URL=... node --import tsx bench/revisions.ts <rev> <rev> ...   (BENCH_ROUNDS, BENCH_SECONDS, BENCH_RUNTIME)
// Each revision is exported (git archive) to a temporary directory beside a hard-linked copy of
// this checkout's node_modules, so run `npm ci` here first.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clearQueues, cpuMicros, deleteExchanges, declareApiQueue, median, requireEnv, startCommand, stopService, wrk, type RunningService } from './support.ts';
import { root, waitFor } from '../tests/support/processes.ts';

const rabbitmqUrl = requireEnv('RABBITMQ_URL');
const revisions = process.argv.slice(2);
if (revisions.length === 0) throw new Error('usage: bench/revisions.ts <rev> <rev> ...');
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const node26 = join(root, 'tests/node26/node_modules/.bin/node');
const runtime = process.env.BENCH_RUNTIME ?? 'node26';
const command = { node26: [node26], bun: [join(root, 'node_modules/.bin/bun')], 'node20-tsx': ['node', '--import', 'tsx'] }[runtime];
if (command === undefined) throw new Error('BENCH_RUNTIME must be node26, bun or node20-tsx');

/** The revision's files, with this checkout's node_modules hard-linked beside them. */
function checkout(revision: string): string {
  const commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', revision]).toString().trim();
  const dir = join(tmpdir(), `event-tracker-rev-${commit}`);
  if (!existsSync(dir)) {
    mkdirSync(dir);
    execFileSync('sh', ['-c', `git -C "${root}" archive ${commit} | tar -x -C "${dir}" && cp -al "${root}/node_modules" "${dir}/node_modules"`]);
  }
  return dir;
}

interface Contender {
  readonly name: string;
  readonly queue: string;
  readonly server: RunningService;
}

const contenders: Contender[] = [];
try {
  for (const [i, revision] of revisions.entries()) {
    const queue = `bench_revision_${process.pid}_${i}`;
    const env = { RABBITMQ_URL: rabbitmqUrl, QUEUE_NAME: queue, EVENTS_EXCHANGE: queue, API_HOST: '127.0.0.1', API_PORT: '0', RATE_LIMIT_MAX_REQUESTS: '1000000000', MAX_CONNECTIONS_PER_CLIENT: '1000000' };
    const server = await startCommand(revision, [...command, join(checkout(revision), 'api/src/server.ts')], env);
    await waitFor(`${revision} to be ready`, async () => (await fetch(`http://127.0.0.1:${server.port}/health/ready`)).ok);
    contenders.push({ name: revision, queue, server });
  }
  // The like-for-like peer (rate limit and its headers, a per-status counter) last: the ratio column divides by it.
  for (const [slug, name, script] of [['fastify', 'Fastify peer', 'fastify.mjs'], ['fastify_limited', 'Fastify + rate limit + counter', 'fastifyRateLimit.mjs']] as const) {
    const queue = `bench_revision_${process.pid}_${slug}`;
    const fastifyEnv = { RABBITMQ_URL: rabbitmqUrl, QUEUE_NAME: queue, EVENTS_EXCHANGE: queue, API_PORT: '0', QUEUE_ARGUMENTS: await declareApiQueue(rabbitmqUrl, queue) };
    contenders.push({ name, queue, server: await startCommand(slug, [node26, `bench/peers/${script}`], fastifyEnv) });
  }

  const samples = contenders.map(() => ({ rps: [] as number[], cpu: [] as number[] }));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const i = (k + round) % contenders.length; // each round starts one later
      const { server, queue } = contenders[i]!;
      const before = cpuMicros(server.child.pid!);
      const result = await wrk(`http://127.0.0.1:${server.port}/api/v1/activities`, 50, seconds);
      samples[i]!.cpu.push((cpuMicros(server.child.pid!) - before) / result.requests);
      samples[i]!.rps.push(result.requestsPerSecond);
      await clearQueues(rabbitmqUrl, 'purge', queue);
    }
  }
  const fastifyCpu = median(samples.at(-1)!.cpu);
  console.log(`\n### The API by revision on ${runtime}, wrk -c50, ${seconds} s per run, median of ${rounds} alternating rounds\n`);
  console.log('| revision | req/s | CPU µs / request | runs | ÷ like-for-like Fastify CPU |\n|---|---:|---:|---|---:|');
  contenders.forEach(({ name }, i) => {
    const { rps, cpu } = samples[i]!;
    console.log(`| ${name} | ${Math.round(median(rps)).toLocaleString('en-US')} | ${median(cpu).toFixed(1)} | ${cpu.map((value) => value.toFixed(0)).join(' / ')} | ${(median(cpu) / fastifyCpu).toFixed(2)} |`);
  });
} finally {
  await Promise.all(contenders.map(({ server }) => stopService(server)));
  await clearQueues(rabbitmqUrl, 'delete', ...contenders.flatMap(({ queue }) => [queue, `${queue}.dead`]));
  await deleteExchanges(rabbitmqUrl, ...contenders.map(({ queue }) => queue));
}
