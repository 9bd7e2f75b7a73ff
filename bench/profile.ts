// A CPU profile of one server under the side-by-side load (wrk -c50, 8 s), summarised by kind of
// code per request (bench/cpuProfile.ts): what BENCHMARKS.md gives as the reason for a missed target.
// Usage: RABBITMQ_URL=... node --import tsx bench/profile.ts <api|fastify|fastify-limited|baseline> [node26|bun|node20-tsx]
// The profile itself is left in .profiles/ (gitignored) for a closer look, e.g. in Chrome DevTools.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { perRequestTable } from './cpuProfile.ts';
import { clearQueues, declareApiQueue, deleteExchanges, requireEnv, startCommand, stopService, wrk, type Runtime } from './support.ts';
import { root, waitFor } from '../tests/support/processes.ts';

const rabbitmqUrl = requireEnv('RABBITMQ_URL');
const [server = 'api', runtime = 'node26'] = process.argv.slice(2) as [string?, Runtime?];
const scripts: Record<string, string> = { api: 'api/src/server.ts', fastify: 'bench/peers/fastify.mjs', 'fastify-limited': 'bench/peers/fastifyRateLimit.mjs', baseline: 'bench/baseline.ts' };
if (scripts[server] === undefined) throw new Error(`server must be one of ${Object.keys(scripts).join(', ')}`);

const dir = join(root, '.profiles', `${server}-${runtime}`);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const profiler = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
const node26 = join(root, 'tests/node26/node_modules/.bin/node');
const argv = { node26: [node26, ...profiler], bun: ['bun', ...profiler], 'node20-tsx': ['node', ...profiler, '--import', 'tsx'] }[runtime];
if (argv === undefined) throw new Error('runtime must be node26, bun or node20-tsx');

const queue = `bench_profile_${process.pid}`;
const running = await startCommand(`${server} on ${runtime}`, [...argv, scripts[server]!], {
  RABBITMQ_URL: rabbitmqUrl,
  QUEUE_NAME: queue,
  EVENTS_EXCHANGE: queue,
  QUEUE_ARGUMENTS: await declareApiQueue(rabbitmqUrl, queue),
  API_HOST: '127.0.0.1',
  API_PORT: '0',
  RATE_LIMIT_MAX_REQUESTS: '1000000000',
  // wrk's connections all come from one address.
  MAX_CONNECTIONS_PER_CLIENT: '1000000',
});
try {
  if (server === 'api') await waitFor('the API to be ready', async () => (await fetch(`http://127.0.0.1:${running.port}/health/ready`)).ok);
  const result = await wrk(`http://127.0.0.1:${running.port}/api/v1/activities`, 50, 8);
  await stopService(running); // the profile is written on exit
  const [file] = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no profile in ${dir}`);
  console.log(`\n### CPU per request: ${server} on ${runtime}, wrk -c50 8 s, ${result.requests.toLocaleString('en-US')} requests (${Math.round(result.requestsPerSecond).toLocaleString('en-US')}/s under the profiler)\n`);
  console.log(perRequestTable(join(dir, file), result.requests));
} finally {
  await stopService(running);
  await clearQueues(rabbitmqUrl, 'delete', queue, `${queue}.dead`);
  await deleteExchanges(rabbitmqUrl, queue);
}
