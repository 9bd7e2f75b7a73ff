// A redis-server of the test's own on a spare loopback port, so a test can kill it and start it
// again on the same port (the shared one on 6379 must stay up for everybody else). No persistence:
// what a test writes is gone when the server stops.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { createInterface } from 'node:readline';

/** Why Redis tests cannot run here, or false when they can; throws under REQUIRE_SERVICES=1. */
export function redisServerMissing(): string | false {
  if (spawnSync('redis-server', ['--version']).status === 0) return false;
  const reason = 'Redis tests skipped: redis-server is not on PATH (Debian: apt-get install redis-server)';
  if (process.env.REQUIRE_SERVICES === '1') throw new Error(`REQUIRE_SERVICES=1 but ${reason}`);
  return reason;
}

/** A port nobody listens on right now: bound on 127.0.0.1 by the kernel, then given back. */
async function sparePort(): Promise<number> {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as net.AddressInfo;
  probe.close();
  await once(probe, 'close');
  return port;
}

export class RedisServer {
  readonly port: number;
  /** Required of every client when set (`--requirepass`), and part of `url`. */
  readonly password: string | undefined;
  #child: ChildProcess | undefined;
  readonly #log: string[] = [];

  private constructor(port: number, password: string | undefined) {
    this.port = port;
    this.password = password;
  }

  static async start(options: { readonly password?: string } = {}): Promise<RedisServer> {
    const server = new RedisServer(await sparePort(), options.password);
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://${this.password === undefined ? '' : `:${encodeURIComponent(this.password)}@`}127.0.0.1:${this.port}`;
  }

  /** Starts the server (again, on the same port) and resolves once it accepts connections. */
  async restart(): Promise<void> {
    if (this.#child !== undefined) throw new Error('redis-server is already running');
    const auth = this.password === undefined ? [] : ['--requirepass', this.password];
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'notice', ...auth], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    // A test process that ends without stop() (a failed assertion, a crash) takes its server along.
    const reap = () => child.kill('SIGKILL');
    process.once('exit', reap);
    const exited = once(child, 'exit');
    void exited.then(() => process.off('exit', reap));
    const ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        this.#log.push(line);
        if (line.includes('Ready to accept connections')) resolve();
      });
      void exited.then(([code]) => reject(new Error(`redis-server on ${this.port} exited (${code}) before it was ready:\n${this.#log.slice(-20).join('\n')}`)));
    });
    // Not ready within 10 s: kill it, which settles `ready` through the exit above.
    const guard = setTimeout(() => child.kill('SIGKILL'), 10_000);
    try {
      await ready;
    } finally {
      clearTimeout(guard);
    }
  }

  /** SIGKILL, as a crash: open connections drop at once, nothing is saved. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    this.#child = undefined;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  }

  stop(): Promise<void> {
    return this.kill();
  }
}
