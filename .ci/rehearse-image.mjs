// Rehearses a compose service's Dockerfile without a Docker engine: copies exactly what each stage
// COPYs (honouring the .dockerignore BuildKit would use) into empty directories, runs its RUN steps
// there, and starts its CMD with the service's environment from `docker-compose config` (broker and
// database URLs pointed at the CI services). A service with a HEALTHCHECK must pass it, then exit 0
// on SIGTERM; one without (the tests runner) must run to completion and exit 0.
// Not rehearsed: the base images themselves, USER, and networking between containers.
// Usage: node .ci/rehearse-image.mjs <service>   (needs RABBITMQ_URL, DATABASE_URL)
import { execFileSync, execSync, spawn } from 'node:child_process';
import amqp from 'amqplib';
import { cpSync, existsSync, mkdtempSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

const service = process.argv[2];
const root = resolve(import.meta.dirname, '..');
const compose = JSON.parse(
  execSync('docker-compose --profile test config | /usr/bin/python3 -c "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"', { cwd: root, encoding: 'utf8' }),
);
const definition = compose.services[service];
if (!definition?.build) throw new Error(`compose has no buildable service ${service}`);
const context = resolve(root, definition.build.context);
const dockerfile = join(context, definition.build.dockerfile);
const lines = readFileSync(dockerfile, 'utf8').split('\n').map((line) => line.trim());

// BuildKit reads `<Dockerfile>.dockerignore` when it exists, else the context's `.dockerignore`.
const ignoreFile = [`${dockerfile}.dockerignore`, join(context, '.dockerignore')].find((file) => existsSync(file));
const ignored = (ignoreFile ? readFileSync(ignoreFile, 'utf8').split('\n') : [])
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'))
  .map((glob) => {
    const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    // `**/` is any number of directories, `*` anything within one path segment.
    return new RegExp(`^${escaped.split('**/').map((part) => part.replace(/\*/g, '[^/]*')).join('(.*/)?')}$`);
  });
const keep = (path) => !ignored.some((pattern) => pattern.test(relative(context, path)));
if (lines.some((line) => line.endsWith('\\'))) throw new Error('line continuations are not rehearsed; keep Dockerfile instructions on one line');

const stages = new Map();
let stage;
const env = {};
let cmd;
let healthcheck;
let workdir = '/';
for (const line of lines.filter((l) => l && !l.startsWith('#'))) {
  const [instruction, ...words] = line.split(/\s+/);
  const rest = line.slice(instruction.length).trim();
  switch (instruction) {
    case 'FROM':
      stage = mkdtempSync(join(tmpdir(), `rehearse-${service}-`));
      if (words[1]?.toUpperCase() === 'AS') stages.set(words[2], stage);
      console.log(`FROM ${words[0]} -> ${stage}`);
      break;
    case 'WORKDIR':
      // Each stage's directory stands for its WORKDIR.
      workdir = rest;
      break;
    case 'COPY': {
      const from = words[0].startsWith('--from=') ? stages.get(words.shift().slice('--from='.length)) : context;
      const target = words.pop();
      for (const source of words) {
        const intoDirectory = (target.endsWith('/') || target === './') && source !== '.';
        const destination = intoDirectory ? join(stage, target, source.split('/').pop()) : join(stage, target);
        mkdirSync(dirname(destination), { recursive: true });
        const path = join(from, source.startsWith(`${workdir}/`) ? source.slice(workdir.length + 1) : source);
        cpSync(path, destination, { recursive: true, verbatimSymlinks: true, filter: from === context ? keep : () => true });
        console.log(`COPY ${source} -> ${destination.slice(stage.length + 1)}`);
      }
      break;
    }
    case 'RUN':
      console.log(`RUN ${rest}`);
      execSync(rest, { cwd: stage, stdio: 'inherit' });
      break;
    case 'ENV': {
      const [key, ...value] = rest.split('=');
      env[key] = value.join('=');
      break;
    }
    case 'HEALTHCHECK':
      healthcheck = JSON.parse(rest.slice(rest.indexOf('CMD') + 3));
      break;
    case 'CMD':
      cmd = JSON.parse(rest);
      break;
    case 'USER':
    case 'EXPOSE':
      break;
    default:
      throw new Error(`instruction not rehearsed: ${instruction}`);
  }
}

// The image's `bun` is the repository's pinned dev dependency here.
const runEnv = {
  PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH}`,
  ...Object.fromEntries(Object.entries(definition.environment ?? {}).map(([k, v]) => [k, String(v)])),
  ...env,
  RABBITMQ_URL: process.env.RABBITMQ_URL,
  ...(definition.environment?.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}),
  // A queue of its own, deleted afterwards: the compose default would consume (and store in the CI
  // database) whatever a developer's own `user_activities` queue on the same broker holds.
  ...(definition.environment?.QUEUE_NAME ? { QUEUE_NAME: `rehearsal_${service}_${process.pid}` } : {}),
  // No cluster: like the compose test runner, the rehearsal skips tests/cluster/ (REQUIRE_CLUSTER unset).
};
console.log(`CMD ${cmd.join(' ')}`);
if (!healthcheck) {
  // A one-shot container (the tests runner): it must run to completion and succeed.
  const child = spawn(cmd[0], cmd.slice(1), { cwd: stage, env: runEnv, stdio: 'inherit' });
  const [code, signal] = await new Promise((done) => child.on('exit', (...result) => done(result)));
  if (code !== 0) throw new Error(`${service} exited with ${code ?? signal}, expected 0`);
  console.log(`${service}: exit 0`);
  process.exit(0);
}

// The healthcheck probes a fixed port: if something else already answers there, the rehearsal
// would be checking that instead, so refuse to start.
const port = Number(runEnv.API_PORT ?? runEnv.HEALTH_PORT);
const busy = await new Promise((answer) => {
  const probe = createServer().once('error', () => answer(true)).listen(port, () => probe.close(() => answer(false)));
});
if (busy) throw new Error(`port ${port} is in use; the rehearsal needs it free`);
const child = spawn(cmd[0], cmd.slice(1), { cwd: stage, env: runEnv, stdio: ['ignore', 'inherit', 'inherit'] });
const exited = new Promise((done) => child.on('exit', (code, signal) => done({ code, signal })));

const deadline = Date.now() + 30_000;
for (;;) {
  try {
    execFileSync(healthcheck[0], healthcheck.slice(1), { cwd: stage, env: runEnv, stdio: 'ignore' });
    console.log(`HEALTHCHECK ${healthcheck.join(' ')}: healthy`);
    break;
  } catch {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`${service} never became healthy`);
    }
    await new Promise((done) => setTimeout(done, 500));
  }
}
child.kill('SIGTERM');
const { code, signal } = await exited;
if (runEnv.QUEUE_NAME) {
  const connection = await amqp.connect(process.env.RABBITMQ_URL);
  const channel = await connection.createChannel();
  for (const queue of [runEnv.QUEUE_NAME, `${runEnv.QUEUE_NAME}.dead`]) await channel.deleteQueue(queue);
  await connection.close();
}
if (code !== 0) throw new Error(`${service} exited with ${code ?? signal} after SIGTERM, expected 0`);
console.log(`${service}: SIGTERM -> exit 0`);
