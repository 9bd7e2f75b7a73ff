// A three-node RabbitMQ cluster of the installed release, beside the machine's own broker, for the
// cluster tests (tests/cluster/) and bench/cluster.ts. A cold start costs about a minute on a small
// machine, so CI starts it once (.ci/run) and the tests find it through RABBITMQ_CLUSTER_DIR.
//   node --import tsx tests/support/rabbitCluster.ts start <dir>   prints the nodes' URLs, comma-separated
//   node --import tsx tests/support/rabbitCluster.ts stop <dir>
// RABBITMQ_CLUSTER_BASE_PORT (default 5681) moves the three AMQP ports, and with them the node names,
// so a second cluster can run beside a first one.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { waitFor } from './processes.ts';
import { serviceUrl } from './services.ts';

const run = promisify(execFile);

/**
 * The release's own scripts: Debian's /usr/sbin wrappers switch to the rabbitmq user and the default
 * node's cookie and environment, which would aim every command at the machine's broker.
 */
const BIN = '/usr/lib/rabbitmq/bin';
const HOST = 'localhost';
const SIZE = 3;
/** Each node's Erlang distribution port is its AMQP port plus this, as RabbitMQ's own default (5672 and 25672). */
const DIST_PORT_OFFSET = 20_000;
/** Cold boots and whole-cluster restarts wait for each other's tables; RabbitMQ itself gives up after 5 minutes. */
const BOOT_TIMEOUT_MS = 180_000;

export interface ClusterNode {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  /** Everything `rabbitmq-server` and `rabbitmqctl` need to find this node and no other. */
  readonly env: Readonly<Record<string, string>>;
  readonly pidFile: string;
}

export interface QuorumQueueState {
  readonly leader: string;
  readonly members: readonly string[];
  readonly online: readonly string[];
}

interface Layout {
  readonly nodes: readonly ClusterNode[];
}

export class RabbitCluster {
  readonly dir: string;
  readonly nodes: readonly ClusterNode[];

  private constructor(dir: string, layout: Layout) {
    this.dir = dir;
    this.nodes = layout.nodes;
  }

  /** The cluster a `start` left in `dir` (RABBITMQ_CLUSTER_DIR for the tests). */
  static open(dir: string): RabbitCluster {
    return new RabbitCluster(dir, JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as Layout);
  }

  /** Writes three nodes' files into `dir`, boots them and waits until all three run as one cluster. */
  static async start(dir: string, basePort = 5681): Promise<RabbitCluster> {
    // Old data would keep an old password and cluster membership: each start gets a fresh directory.
    if (existsSync(join(dir, 'cluster.json'))) throw new Error(`${dir} already holds a cluster: start one in a new directory`);
    const home = join(dir, 'home');
    mkdirSync(home, { recursive: true });
    // Erlang refuses a cookie file others can read.
    writeFileSync(join(home, '.erlang.cookie'), randomBytes(20).toString('hex'), { mode: 0o400 });
    // The nodes' one user, with a password made here, so no credential is written into the source.
    const password = randomBytes(12).toString('hex');
    const ports = Array.from({ length: SIZE }, (_, i) => basePort + i);
    // A node already there (left by an earlier run) would answer for ours and fail every later step obscurely.
    for (const port of ports.flatMap((amqpPort) => [amqpPort, amqpPort + DIST_PORT_OFFSET])) {
      if (await listening(port)) throw new Error(`port ${port} is taken: a cluster left by an earlier run? (\`stop <its dir>\` stops it; RABBITMQ_CLUSTER_BASE_PORT moves the ports)`);
    }
    const names = ports.map((port) => `et${port}@${HOST}`);
    const nodes = ports.map((port, i) => writeNode(dir, home, names[i]!, port, names, password));
    writeFileSync(join(dir, 'cluster.json'), `${JSON.stringify({ nodes } satisfies Layout, null, 2)}\n`);
    const cluster = new RabbitCluster(dir, { nodes });
    // The first node forms the cluster alone; the others then find it through classic_config peer
    // discovery. Booting all three at once could form more than one cluster.
    await cluster.startNode(nodes[0]!);
    await Promise.all(nodes.slice(1).map((node) => cluster.startNode(node)));
    await cluster.waitForRunning(SIZE);
    return cluster;
  }

  urls(): string {
    return this.nodes.map((node) => node.url).join(',');
  }

  node(name: string): ClusterNode {
    const node = this.nodes.find((candidate) => candidate.name === name);
    if (node === undefined) throw new Error(`${name} is not a node of this cluster (${this.nodes.map((n) => n.name).join(', ')})`);
    return node;
  }

  /** Runs a CLI tool (`rabbitmqctl`, `rabbitmq-queues`, ...) against `node`; resolves with its stdout. */
  async cli(node: ClusterNode, tool: string, ...args: string[]): Promise<string> {
    const { stdout } = await run(join(BIN, tool), ['-n', node.name, ...args], { env: node.env, timeout: 60_000 });
    return stdout;
  }

  /** The names of the nodes `via` (default: the first live one) sees running in the cluster. */
  async runningNodes(via?: ClusterNode): Promise<string[]> {
    const status = JSON.parse(await this.cli(via ?? (await this.liveNode()), 'rabbitmqctl', 'cluster_status', '--formatter', 'json')) as {
      running_nodes: string[];
    };
    return status.running_nodes.sort();
  }

  /** The node holding `queue`'s leader, its members and those of them online, as a live node sees them. */
  async quorumQueue(queue: string): Promise<QuorumQueueState> {
    const columns = ['name', 'type', 'leader', 'members', 'online'];
    const rows = JSON.parse(await this.cli(await this.liveNode(), 'rabbitmqctl', 'list_queues', '--quiet', '--formatter', 'json', ...columns)) as {
      name: string;
      type: string;
      leader: string;
      members: string[];
      online: string[];
    }[];
    const row = rows.find((candidate) => candidate.name === queue);
    if (row === undefined) throw new Error(`no queue ${queue} in the cluster`);
    if (row.type !== 'quorum') throw new Error(`${queue} is a ${row.type} queue, not a quorum queue`);
    return { leader: row.leader, members: [...row.members].sort(), online: [...row.online].sort() };
  }

  /** Kills `node`'s Erlang VM with SIGKILL, as a crash or a power loss would, and waits until it is gone. */
  async kill(node: ClusterNode): Promise<void> {
    const pid = this.pid(node);
    process.kill(pid, 'SIGKILL');
    await waitFor(`${node.name} (pid ${pid}) to die`, () => !alive(pid), 30_000);
  }

  /** Boots `node` (its data kept) and waits until its AMQP listener answers, which it opens last. */
  async startNode(node: ClusterNode): Promise<void> {
    await run(join(BIN, 'rabbitmq-server'), ['-detached'], { env: node.env, timeout: 60_000 });
    await waitFor(`${node.name} to accept AMQP connections`, () => accepts(node.url), BOOT_TIMEOUT_MS, () => `see ${node.env.RABBITMQ_LOG_BASE}`);
  }

  /** Boots a killed or stopped node and waits until the cluster counts it among its running nodes. */
  async restart(node: ClusterNode): Promise<void> {
    await this.startNode(node);
    await this.waitForRunning(SIZE);
  }

  /** SIGKILLs every node at once: the whole cluster down, as in a power cut. */
  async killAll(): Promise<void> {
    await Promise.all(this.nodes.map((node) => this.kill(node)));
  }

  /**
   * Boots every node at once: after a whole-cluster stop each node waits for its peers' tables, so
   * they must come up together.
   */
  async startAll(): Promise<void> {
    await Promise.all(this.nodes.map((node) => this.startNode(node)));
    await this.waitForRunning(SIZE);
  }

  /** Stops every running node cleanly (a node already down is left alone). */
  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (node) => {
        const pid = this.pidOrUndefined(node);
        if (pid === undefined || !alive(pid)) return;
        process.kill(pid, 'SIGTERM'); // the node's own clean shutdown, as `rabbitmqctl stop` does, without the CLI's seconds
        await waitFor(`${node.name} to stop`, () => !alive(pid), 60_000).catch(() => process.kill(pid, 'SIGKILL'));
      }),
    );
  }

  async waitForRunning(count: number): Promise<void> {
    let seen: string[] = [];
    await waitFor(
      `${count} running nodes in the cluster`,
      async () => {
        seen = await this.runningNodes().catch(() => []);
        return seen.length === count;
      },
      BOOT_TIMEOUT_MS,
      () => `running: ${seen.join(', ') || 'none'}`,
    );
  }

  /** Whether `node`'s Erlang VM is alive (it may still be booting). */
  isRunning(node: ClusterNode): boolean {
    const pid = this.pidOrUndefined(node);
    return pid !== undefined && alive(pid);
  }

  pid(node: ClusterNode): number {
    const pid = this.pidOrUndefined(node);
    if (pid === undefined) throw new Error(`${node.name} has no pid file (${node.pidFile})`);
    return pid;
  }

  private pidOrUndefined(node: ClusterNode): number | undefined {
    try {
      return Number(readFileSync(node.pidFile, 'utf8').trim());
    } catch {
      return undefined;
    }
  }

  private async liveNode(): Promise<ClusterNode> {
    for (const node of this.nodes) {
      if (this.isRunning(node) && (await accepts(node.url))) return node;
    }
    throw new Error('no node of the cluster is running');
  }
}

/** The cluster the tests share, from RABBITMQ_CLUSTER_DIR. */
export function sharedCluster(): RabbitCluster {
  return RabbitCluster.open(serviceUrl('RABBITMQ_CLUSTER_DIR'));
}

function writeNode(dir: string, home: string, name: string, port: number, peers: readonly string[], password: string): ClusterNode {
  const nodeDir = join(dir, name.split('@')[0]!);
  const logDir = join(nodeDir, 'log');
  mkdirSync(logDir, { recursive: true });
  const config = join(nodeDir, 'rabbitmq.conf');
  writeFileSync(
    config,
    [
      `listeners.tcp.1 = 127.0.0.1:${port}`,
      'default_user = cluster',
      `default_pass = ${password}`,
      'cluster_formation.peer_discovery_backend = classic_config',
      ...peers.map((peer, i) => `cluster_formation.classic_config.nodes.${i + 1} = ${peer}`),
      '',
    ].join('\n'),
  );
  writeFileSync(join(nodeDir, 'enabled_plugins'), '[].\n');
  // An empty environment file in place of Debian's /etc/rabbitmq/rabbitmq-env.conf, which names the default node.
  writeFileSync(join(nodeDir, 'rabbitmq-env.conf'), '');
  const pidFile = join(nodeDir, 'pid');
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    LANG: 'C.UTF-8',
    RABBITMQ_CONF_ENV_FILE: join(nodeDir, 'rabbitmq-env.conf'),
    RABBITMQ_NODENAME: name,
    RABBITMQ_DIST_PORT: String(port + DIST_PORT_OFFSET),
    RABBITMQ_CONFIG_FILE: config,
    RABBITMQ_ADVANCED_CONFIG_FILE: join(nodeDir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(nodeDir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(nodeDir, 'mnesia'),
    RABBITMQ_LOG_BASE: logDir,
    RABBITMQ_PID_FILE: pidFile,
    // Erlang distribution on the loopback only, as the default node's own environment file has it.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  return { name, port, url: `amqp://cluster:${password}@127.0.0.1:${port}`, env, pidFile };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

async function accepts(url: string): Promise<boolean> {
  try {
    const connection = await amqp.connect(url);
    await connection.close();
    return true;
  } catch {
    return false;
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const [command, dir] = process.argv.slice(2);
  if ((command !== 'start' && command !== 'stop') || dir === undefined) {
    console.error('usage: rabbitCluster.ts start|stop <dir>');
    process.exit(2);
  }
  if (command === 'start') {
    const cluster = await RabbitCluster.start(resolve(dir), Number(process.env.RABBITMQ_CLUSTER_BASE_PORT ?? 5681));
    console.log(cluster.urls());
  } else {
    await RabbitCluster.open(resolve(dir)).stop();
  }
}
