// Starts the services as child processes, exactly as README's start commands do, on a chosen
// runtime, and reads the bound port from their first "listening" log line.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'node_modules/.bin');
const node26 = join(root, 'tests/node26/node_modules/.bin/node');

export type Runtime = 'node20-tsx' | 'node26' | 'bun';
export type Service = 'api' | 'consumer';

const scripts: Record<string, string> = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts;

/** The command line of a service on a runtime: the npm start scripts, or `node <entry>` on Node 26. */
function commandFor(service: Service, runtime: Runtime): string[] {
  if (runtime === 'node26') {
    // README: on Node >= 22.18, `node api/src/server.ts` runs the sources with native type stripping.
    const entry = scripts[`start:${service}`]!.split(' ').at(-1)!;
    return [node26, entry];
  }
  const script = scripts[runtime === 'bun' ? `start:${service}:bun` : `start:${service}`]!;
  return script.split(' ');
}

/** Why a runtime cannot run here, or false when it can. */
export function runtimeMissing(runtime: Runtime): string | false {
  if (runtime === 'node26' && !existsSync(node26)) return 'Node 26 not installed: run `npm ci --prefix tests/node26`';
  if (runtime === 'bun' && !existsSync(join(bin, 'bun'))) return 'Bun not installed: run `npm rebuild bun`';
  return false;
}

/** Runtimes chosen by E2E_RUNTIMES (comma-separated), default all three. */
export function selectedRuntimes(): Runtime[] {
  const all: Runtime[] = ['node20-tsx', 'node26', 'bun'];
  const chosen = process.env.E2E_RUNTIMES?.split(',').map((name) => name.trim()) ?? all;
  return all.filter((runtime) => chosen.includes(runtime));
}

export interface RunningService {
  readonly child: ChildProcess;
  readonly port: number;
  /** The API's OPS_PORT server (probes and /metrics), when it has one. */
  readonly opsPort?: number;
  /** The last 500 to 1,000 log lines, for diagnosing a failure (stdout after the listening line is split into lines when this is read). */
  readonly logs: string[];
  readonly exited: Promise<number | null>;
}

export function startService(service: Service, runtime: Runtime, env: Record<string, string>): Promise<RunningService> {
  return startCommand(`${service} on ${runtime}`, commandFor(service, runtime), env);
}

/**
 * Starts a service and waits until its readiness probe answers 200: the API listens at once and
 * answers 503 until it has reached RabbitMQ, so a test that wants 202s waits for this.
 */
export async function startReady(service: Service, runtime: Runtime, env: Record<string, string>): Promise<RunningService> {
  const running = await startService(service, runtime, env);
  const ready = async () => (await fetch(`http://127.0.0.1:${running.opsPort ?? running.port}/health/ready`).then((response) => response.status).catch(() => 0)) === 200;
  await waitFor(`${service} on ${runtime} to be ready`, ready, 30_000, () => running.logs.slice(-20).join('\n'));
  return running;
}

/** Runs `bench/baseline.ts` (or any script of ours) the way `runtime` runs the services. */
export function scriptCommand(runtime: Runtime, script: string): string[] {
  if (runtime === 'node26') return [node26, script];
  return runtime === 'bun' ? ['bun', script] : ['node', '--import', 'tsx', script];
}

/** Starts `argv` and resolves with the port (and opsPort) from its first `{"msg":"...listening...","port":N}` line. */
export async function startCommand(label: string, argv: readonly string[], env: Record<string, string>): Promise<RunningService> {
  const [command, ...args] = argv;
  const child = spawn(command!, args, {
    cwd: root,
    env: { PATH: `${bin}:${process.env.PATH}`, HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  // The tail is what explains a failure: kept with an amortised push, not a shift of the whole tail per line.
  const keep = (line: string) => {
    if (lines.push(line) > 1_000) lines.splice(0, 500);
  };
  // stdout is split into lines until the listening line; after it, it is kept as text and split
  // only when `logs` is read: a bench server logs a line per request, and the bench's own process
  // runs on the two cores the server under test shares (BENCHMARKS.md section 0).
  let unread: string[] = [];
  let unreadChars = 0;
  let partial = '';
  /** The complete lines of `text`; the unfinished last one waits in `partial`. */
  const split = (text: string) => {
    const complete = text.split('\n');
    partial = complete.pop()!;
    return complete;
  };
  const readUnread = () => {
    if (unread.length === 0) return;
    const text = partial + unread.join('');
    unread = [];
    unreadChars = 0;
    for (const line of split(text).slice(-1_000)) keep(line);
  };
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  createInterface({ input: child.stderr! }).on('line', keep);
  const listening = new Promise<{ port: number; opsPort?: number }>((resolvePort, reject) => {
    let announced = false;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      if (announced) {
        unread.push(chunk);
        unreadChars += chunk.length;
        if (unreadChars > UNREAD_CHARS) {
          // Nobody read them: only the tail is kept, its first line cut where the text was.
          const tail = unread.join('').slice(-UNREAD_CHARS / 2);
          unread = [tail.slice(tail.indexOf('\n') + 1)];
          unreadChars = unread[0]!.length;
          partial = '';
        }
        return;
      }
      for (const line of split(partial + chunk)) {
        keep(line);
        const entry = announced ? undefined : parseJson(line);
        if (typeof entry?.port === 'number' && /listening/.test(String(entry.msg))) {
          announced = true;
          resolvePort(typeof entry.opsPort === 'number' ? { port: entry.port, opsPort: entry.opsPort } : { port: entry.port });
        }
      }
    });
    child.stdout!.on('end', () => {
      readUnread();
      if (partial !== '') keep(partial);
      partial = '';
    });
    void exited.then((code) => {
      readUnread();
      reject(new Error(`${label} exited (${code}) before listening:\n${lines.join('\n')}`));
    });
  });
  // Not listening within 30 s: kill it, which settles `listening` through the exit above.
  const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
  try {
    const running = { child, ...(await listening), exited };
    return Object.defineProperty(running, 'logs', {
      get: () => {
        readUnread();
        return lines;
      },
    }) as RunningService;
  } finally {
    clearTimeout(guard);
  }
}

/** Sends a signal and waits for the exit code (SIGKILL after 20 s, so a test never hangs). */
export async function stopService(service: RunningService, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return service.child.exitCode;
  service.child.kill(signal);
  const guard = setTimeout(() => service.child.kill('SIGKILL'), 20_000);
  try {
    return await service.exited;
  } finally {
    clearTimeout(guard);
  }
}

/** Output of a listening server kept unsplit; beyond it, only the newer half is kept. */
const UNREAD_CHARS = 1 << 20;

function parseJson(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Polls `check` until it returns true; fails after `timeoutMs`, with what `explain` says (a
 * service's recent log, say) appended. For real-process tests only.
 */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000, explain?: () => Promise<string> | string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${explain ? `; ${await explain()}` : ''}`);
    await new Promise((done) => setTimeout(done, 100));
  }
}
