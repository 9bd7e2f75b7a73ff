// Keeps docker-compose.yml and the Dockerfiles it builds production-like: every image pinned to at
// least major.minor, the database and the broker published on loopback unless .env says otherwise,
// and the consumer writing as a readWrite-only user that the MongoDB init script creates.
// The compose file is parsed with PyYAML, as .ci/rehearse-image.mjs does, and each `${NAME:-default}`
// is read as its default: what a fresh clone without .env gets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { root } from '../support/processes.ts';

type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml };
interface Service {
  readonly image?: string;
  readonly build?: { readonly context: string; readonly dockerfile?: string };
  readonly ports?: ReadonlyArray<string | number | { readonly host_ip?: string; readonly published?: number | string; readonly target: number }>;
  readonly network_mode?: string;
  readonly environment?: Readonly<Record<string, string | number>>;
  readonly volumes?: ReadonlyArray<string | { readonly source?: string; readonly target: string }>;
  readonly profiles?: readonly string[];
  readonly networks?: readonly string[] | Readonly<Record<string, { readonly ipv4_address?: string } | null>>;
  readonly command?: readonly string[];
  readonly hostname?: string;
}

const PYTHON = '/usr/bin/python3';
const TO_JSON = 'import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))';

function parseYaml(text: string): Yaml | undefined {
  try {
    return JSON.parse(execFileSync(PYTHON, ['-c', TO_JSON], { input: text, encoding: 'utf8' })) as Yaml;
  } catch {
    return undefined;
  }
}

const composeText = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
const raw = parseYaml(composeText) as { services: Record<string, Service> } | undefined;
// The compose test image has no PyYAML; CI (.ci/run) has it, with docker-compose.
const skip = raw === undefined && `compose checks skipped: ${PYTHON} with PyYAML is needed to parse docker-compose.yml (Debian: python3-yaml)`;

/** Compose's interpolation as a fresh clone sees it: `${NAME:-default}` and `${NAME-default}` are the default, others empty. */
function withDefaults<T extends Yaml>(value: T): T {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([A-Za-z_]\w*)(?::?-([^}]*))?\}|\$([A-Za-z_]\w*)/g, (match, _braced, fallback: string | undefined) => (match === '$$' ? '$' : (fallback ?? ''))) as T;
  }
  if (Array.isArray(value)) return value.map(withDefaults) as T;
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, withDefaults(item)])) as T;
  return value;
}

const services: Record<string, Service> = raw ? withDefaults(raw.services as unknown as Yaml) as unknown as Record<string, Service> : {};

/**
 * Why `ref` floats, or undefined when it is pinned: by digest, or by a tag starting with at least
 * major.minor (`8.0`, `1.4.5-slim`, `3.10.8-management`). Floating: no tag (which means `latest`),
 * `latest`, a major only (`mongo:8`, `oven/bun:1-slim`, `node:20`), a name (`lts`, `bookworm`),
 * and anything left to a variable.
 */
function floatingTag(ref: string): string | undefined {
  if (ref.includes('$')) return 'its tag is a variable, so it cannot be checked';
  if (/@sha256:[0-9a-f]{64}$/.test(ref)) return undefined;
  // The tag is in the last path segment: `registry:5000/name` has a port, not a tag.
  const name = ref.split('/').at(-1)!;
  const colon = name.indexOf(':');
  if (colon < 0) return 'it has no tag, which means latest';
  const tag = name.slice(colon + 1);
  if (/^v?\d+\.\d+(?:\.\d+)*(?:[-_+][\w.+-]+)?$/.test(tag)) return undefined;
  return `its tag "${tag}" is not pinned to at least major.minor`;
}

/** The images of every FROM line of `dockerfile`, stages (`FROM deps`) and `scratch` left out. */
function baseImages(dockerfile: string): string[] {
  const stages = new Set<string>();
  const images: string[] = [];
  for (const line of readFileSync(dockerfile, 'utf8').split('\n')) {
    const from = /^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$/i.exec(line);
    if (from === null) continue;
    if (!stages.has(from[1]!) && from[1] !== 'scratch') images.push(from[1]!);
    if (from[2] !== undefined) stages.add(from[2]);
  }
  return images;
}

const dockerfiles = Object.values(services)
  .filter((service) => service.build !== undefined)
  .map(({ build }) => join(build!.context.startsWith('/') ? build!.context : join(root, build!.context), build!.dockerfile ?? 'Dockerfile'));

/** Images that hold data or credentials and must not face the network by default. */
const DATA_IMAGES = new Set(['rabbitmq', 'mongo', 'postgres', 'mysql', 'mariadb', 'redis', 'valkey', 'ferretdb']);
const repository = (ref: string): string => ref.split('/').at(-1)!.split(/[:@]/)[0]!;
const dataServices = Object.entries(services).filter(([, service]) => service.image !== undefined && DATA_IMAGES.has(repository(service.image)));

/** The host address of a published port, or undefined when it has none (every interface). */
function hostAddress(port: string | number | { readonly host_ip?: string }): string | undefined {
  if (typeof port === 'object') return port.host_ip || undefined;
  const spec = String(port).replace(/\/\w+$/, '');
  const bracketed = /^\[([^\]]+)\]:/.exec(spec);
  if (bracketed !== null) return bracketed[1];
  const parts = spec.split(':');
  // HOST:PUBLISHED:TARGET (PUBLISHED may be empty); an unbracketed IPv6 host has colons of its own.
  return parts.length >= 3 ? parts.slice(0, -2).join(':') : undefined;
}

const isLoopback = (address: string): boolean => /^127\.\d+\.\d+\.\d+$/.test(address) || address === '::1' || address === 'localhost';

describe('the floating-tag rule', () => {
  test('counts latest, no tag, a major only and named tags as floating, and major.minor or a digest as pinned', () => {
    for (const ref of ['mongo', 'mongo:latest', 'mongo:8', 'oven/bun:1-slim', 'node:20', 'node:lts-slim', 'debian:bookworm', 'registry:5000/mongo', 'mongo:${MONGO_TAG}']) {
      assert.notEqual(floatingTag(ref), undefined, `${ref} should count as floating`);
    }
    for (const ref of ['mongo:8.0', 'oven/bun:1.4.5-slim', 'rabbitmq:3.10.8-management', 'node:20.20.2', 'registry:5000/team/mongo:8.0.4', `mongo@sha256:${'a'.repeat(64)}`]) {
      assert.equal(floatingTag(ref), undefined, `${ref} should count as pinned`);
    }
  });

  test('reads the host address of short and long port syntax, IPv6 included', () => {
    assert.equal(hostAddress('5672:5672'), undefined);
    assert.equal(hostAddress(5672), undefined);
    assert.equal(hostAddress('127.0.0.1:5672:5672/tcp'), '127.0.0.1');
    assert.equal(hostAddress('127.0.0.1::5672'), '127.0.0.1');
    assert.equal(hostAddress('[::1]:5672:5672'), '::1');
    assert.equal(hostAddress({ host_ip: '0.0.0.0' }), '0.0.0.0');
    assert.equal(hostAddress({}), undefined);
  });
});

describe('docker-compose.yml images', { skip }, () => {
  test('every service image is pinned to at least major.minor', () => {
    const images = Object.entries(services).filter(([, service]) => service.image !== undefined);
    assert.ok(images.length >= 2, 'found no images in docker-compose.yml');
    const floating = images.map(([name, { image }]) => [name, image!, floatingTag(image!)] as const).filter(([, , why]) => why !== undefined);
    assert.deepEqual(floating.map(([name, image, why]) => `${name}: ${image}: ${why}`), []);
  });

  test('every FROM line of the Dockerfiles compose builds is pinned to at least major.minor', () => {
    assert.ok(dockerfiles.length >= 3, `found ${dockerfiles.length} Dockerfiles to check`);
    const floating = dockerfiles.flatMap((file) => baseImages(file).map((image) => `${file.slice(root.length + 1)}: FROM ${image}: ${floatingTag(image)}`).filter((line) => !line.endsWith(': undefined')));
    assert.deepEqual(floating, []);
  });

  test("the Bun image is exactly package.json's bun, the one the tests run", () => {
    const bun = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies.bun;
    const tags = dockerfiles.flatMap(baseImages).filter((image) => repository(image) === 'bun').map((image) => image.split(':')[1]!);
    assert.ok(tags.length > 0, 'no Dockerfile runs on oven/bun');
    for (const tag of tags) assert.equal(tag.replace(/-.*$/, ''), bun, `oven/bun:${tag} against package.json bun ${bun}`);
  });
});

describe('docker-compose.yml ports', { skip }, () => {
  test('finds the broker, the database and the rate limit\'s Redis among the services', () => {
    assert.deepEqual([...new Set(dataServices.map(([, service]) => repository(service.image!)))].sort(), ['mongo', 'rabbitmq', 'redis']);
  });

  test('the broker and the database publish their ports on loopback only', () => {
    const problems: string[] = [];
    for (const [name, service] of dataServices) {
      if (service.network_mode === 'host') problems.push(`${name}: network_mode host publishes every port on every interface`);
      for (const port of service.ports ?? []) {
        const address = hostAddress(port);
        if (address === undefined) problems.push(`${name}: ${JSON.stringify(port)} is published on every interface; give it a host address`);
        else if (!isLoopback(address)) problems.push(`${name}: ${JSON.stringify(port)} is published on ${address}, not loopback`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test('their host address is a ${NAME:-127.0.0.1} placeholder, so .env can open them', () => {
    const rawServices = raw!.services;
    for (const [name] of dataServices) {
      for (const port of rawServices[name]!.ports ?? []) {
        assert.match(String(port), /^\$\{[A-Z][A-Z0-9_]*:-127\.0\.0\.1\}:/, `${name}: ${JSON.stringify(port)}`);
      }
    }
  });
});

interface CreateUser {
  readonly in: string;
  readonly user: unknown;
  readonly pwd: unknown;
  readonly roles: unknown;
}

/**
 * Runs a MongoDB init script as the mongo image's entrypoint does (mongosh, database `test`), with a
 * `db` that records createUser calls and refuses everything else, so a grant the test does not know
 * of cannot pass unseen.
 */
function runInitScript(file: string, env: Readonly<Record<string, string>>): CreateUser[] {
  const calls: CreateUser[] = [];
  const database = (name: string): object =>
    new Proxy(
      {},
      {
        get: (_target, property) => {
          if (property === 'getSiblingDB') return (other: string) => database(other);
          // Through JSON: objects made in the script's context have its prototypes, which deepEqual tells apart.
          if (property === 'createUser') return (spec: unknown) => calls.push({ in: name, ...(JSON.parse(JSON.stringify(spec)) as Omit<CreateUser, 'in'>) });
          throw new Error(`the init script uses db.${String(property)}, which this test does not check`);
        },
      },
    );
  runInNewContext(readFileSync(file, 'utf8'), { db: database('test'), process: { env: { ...env } }, print: () => {} }, { filename: file });
  return calls;
}

/** A role as mongosh takes it: a name alone means that role on the database the user is created in. */
const role = (entry: unknown, createdIn: string): unknown => (typeof entry === 'string' ? { role: entry, db: createdIn } : entry);

describe('the MongoDB user of the consumer', { skip }, () => {
  const mongodb = services.mongodb;
  const initScripts = (mongodb?.volumes ?? [])
    .map((volume) => (typeof volume === 'string' ? { source: volume.split(':')[0], target: volume.split(':')[1] ?? '' } : volume))
    .filter(({ source, target }) => source !== undefined && target.startsWith('/docker-entrypoint-initdb.d/') && target.endsWith('.js'))
    .map(({ source }) => join(root, source!));
  const url = new URL(String(services.consumer?.environment?.DATABASE_URL ?? 'mongodb://missing'));
  const database = url.pathname.slice(1);
  const environment = Object.fromEntries(Object.entries(mongodb?.environment ?? {}).map(([key, value]) => [key, String(value)]));

  test("the consumer's DATABASE_URL is a user of its own database, not the root user", () => {
    assert.notEqual(url.username, '', 'the consumer logs in as nobody');
    assert.notEqual(decodeURIComponent(url.username), environment.MONGO_INITDB_ROOT_USERNAME, 'the consumer logs in as the root user');
    assert.equal(url.searchParams.get('authSource'), database, 'authSource must be the database the user lives in');
  });

  test('an init script mounted into /docker-entrypoint-initdb.d/ creates exactly that user, with readWrite on that database only', () => {
    assert.equal(initScripts.length, 1, 'mount one *.js init script into /docker-entrypoint-initdb.d/');
    const calls = runInitScript(initScripts[0]!, environment);
    assert.equal(calls.length, 1, `expected one createUser, got ${JSON.stringify(calls)}`);
    const [created] = calls;
    assert.equal(created!.in, database, 'the user must live in the consumer database (authSource)');
    assert.equal(created!.user, decodeURIComponent(url.username));
    assert.equal(created!.pwd, decodeURIComponent(url.password), "the password must be the one in the consumer's DATABASE_URL");
    assert.ok(Array.isArray(created!.roles), 'roles must be a list');
    assert.deepEqual(created!.roles.map((entry) => role(entry, created!.in)), [{ role: 'readWrite', db: database }]);
  });

  test('the init script takes names and password from its environment and refuses to run without them', () => {
    const [created] = runInitScript(initScripts[0]!, { MONGO_DATABASE: 'elsewhere', MONGO_APP_USER: 'someone', MONGO_APP_PASSWORD: 'a-secret' });
    assert.deepEqual({ ...created!, roles: (created!.roles as unknown[]).map((entry) => role(entry, 'elsewhere')) }, {
      in: 'elsewhere',
      user: 'someone',
      pwd: 'a-secret',
      roles: [{ role: 'readWrite', db: 'elsewhere' }],
    });
    assert.throws(() => runInitScript(initScripts[0]!, {}), /MONGO_DATABASE, MONGO_APP_USER, MONGO_APP_PASSWORD unset/);
  });
});

/** The addresses an IPv4 CIDR covers, as [first, last] numbers. */
function ipv4Range(cidr: string): [number, number] {
  const [address, bits] = cidr.split('/');
  const value = address!.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);
  const size = 2 ** (32 - Number(bits));
  return [value - (value % size), value - (value % size) + size - 1];
}

describe('docker-compose.yml scale profile: replicas behind one proxy, one rate limit in Redis', { skip }, () => {
  const replica = services['api-replica'];
  const proxy = services.proxy;
  const redis = services.redis;
  const rawCompose = raw as unknown as { networks?: Record<string, { ipam?: { config?: Array<{ subnet?: string }> } }> };
  const nginx = readFileSync(join(root, 'deploy/proxy/nginx.conf'), 'utf8').replace(/#.*$/gm, '');

  test('the proxy, the replicas and Redis start only with --profile scale', () => {
    for (const [name, service] of [['api-replica', replica], ['proxy', proxy], ['redis', redis]] as const) {
      assert.deepEqual(service?.profiles, ['scale'], `${name}: profiles`);
    }
  });

  test('the replicas share the limit through the redis service and publish no port, so only the proxy reaches them', () => {
    assert.equal(replica!.environment?.RATE_LIMIT_STORE, 'redis');
    const url = new URL(String(replica!.environment?.REDIS_URL));
    assert.equal(url.hostname, 'redis');
    assert.deepEqual(replica!.ports ?? [], []);
  });

  test("the replicas trust X-Forwarded-For from the proxy's fixed address alone, inside the scale network", () => {
    const networks = proxy!.networks as Record<string, { ipv4_address?: string } | null>;
    const address = networks.scale?.ipv4_address;
    assert.ok(address !== undefined, 'the proxy needs a fixed address on the scale network');
    assert.equal(replica!.environment?.TRUST_PROXY, address);
    const [first, last] = ipv4Range(rawCompose.networks?.scale?.ipam?.config?.[0]?.subnet ?? '0.0.0.0/32');
    const [value] = ipv4Range(`${address}/32`);
    assert.ok(value >= first && value <= last, `${address} is outside the scale network's subnet`);
    assert.ok((replica!.networks as readonly string[]).includes('scale'), 'the replicas are on the scale network');
  });

  test('nginx balances over the api-replica service on the port the API listens on, appending the client to X-Forwarded-For', () => {
    assert.match(nginx, new RegExp(`server\\s+api-replica:${replica!.environment?.API_PORT};`));
    assert.match(nginx, /proxy_set_header\s+X-Forwarded-For\s+\$proxy_add_x_forwarded_for;/);
    assert.match(nginx, /listen\s+8080;/);
    assert.ok((proxy!.ports ?? []).some((port) => String(port).endsWith(':8080')), 'the proxy publishes its port 8080');
    assert.ok((proxy!.volumes ?? []).some((volume) => String(volume).startsWith('./deploy/proxy/nginx.conf:/etc/nginx/nginx.conf')), 'mounts deploy/proxy/nginx.conf');
  });

  test('Redis asks for the password REDIS_URL carries, and keeps nothing on disk', () => {
    const command = redis!.command ?? [];
    const password = command[command.indexOf('--requirepass') + 1];
    assert.ok(password !== undefined && password !== '', 'redis-server --requirepass');
    assert.equal(decodeURIComponent(new URL(String(replica!.environment?.REDIS_URL)).password), password);
    assert.equal(command[command.indexOf('--appendonly') + 1], 'no');
    assert.equal(command[command.indexOf('--save') + 1], '');
  });
});

describe('docker-compose.yml hardening', { skip }, () => {
  /** Services whose image writes outside its volumes as it starts: a read-only root would stop it. */
  // The cluster profile's nodes are the rabbitmq service's image and settings.
  const WRITABLE_ROOT = new Set(['rabbitmq', 'rabbit-1', 'rabbit-2', 'rabbit-3', 'mongodb', 'tests']);
  const hardened = Object.entries(services).filter(([name]) => name !== 'tests');
  const parsed = (service: Service) => service as Service & {
    readonly mem_limit?: string | number;
    readonly pids_limit?: number;
    readonly security_opt?: readonly string[];
    readonly cap_drop?: readonly string[];
    readonly cap_add?: readonly string[];
    readonly read_only?: boolean;
    readonly healthcheck?: { readonly test?: readonly string[] };
  };

  test('every service but the test runner has a memory and a process limit, no-new-privileges and no capability it does not need', () => {
    assert.ok(hardened.length >= 6, `found ${hardened.length} services`);
    const problems: string[] = [];
    for (const [name, service] of hardened.map(([name, service]) => [name, parsed(service)] as const)) {
      if (service.mem_limit === undefined) problems.push(`${name}: no mem_limit`);
      if (!(Number(service.pids_limit) > 0)) problems.push(`${name}: no pids_limit`);
      if (!(service.security_opt ?? []).includes('no-new-privileges:true')) problems.push(`${name}: no security_opt no-new-privileges:true`);
      if (JSON.stringify(service.cap_drop) !== '["ALL"]') problems.push(`${name}: cap_drop is not [ALL]`);
      // Only what an entrypoint that starts as root needs to chown its volume and drop to its user.
      const extra = (service.cap_add ?? []).filter((cap) => !['CHOWN', 'SETUID', 'SETGID'].includes(cap));
      if (extra.length > 0) problems.push(`${name}: cap_add ${extra.join(', ')}`);
    }
    assert.deepEqual(problems, []);
  });

  test('every service whose image allows it has a read-only root filesystem; ours add back no capability', () => {
    for (const [name, service] of Object.entries(services).map(([name, service]) => [name, parsed(service)] as const)) {
      if (!WRITABLE_ROOT.has(name)) assert.equal(service.read_only, true, `${name}: read_only`);
      if (service.build !== undefined && name !== 'tests') assert.equal(service.cap_add, undefined, `${name}: runs as its image's user and needs no capability`);
    }
  });

  test('MongoDB is pinned to a patch version, not a minor line', () => {
    assert.match(services.mongodb?.image ?? '', /^mongo:\d+\.\d+\.\d+$/);
  });

  test('the API serves its probes and metrics on OPS_PORT, which compose does not publish, and its healthcheck asks there', () => {
    for (const name of ['api', 'api-replica']) {
      const api = parsed(services[name]!);
      const opsPort = String(api.environment?.OPS_PORT ?? '');
      assert.match(opsPort, /^\d+$/, `${name}: OPS_PORT`);
      assert.notEqual(opsPort, String(api.environment?.API_PORT));
      assert.deepEqual((api.ports ?? []).filter((port) => String(typeof port === 'object' ? port.target : port).split(':').at(-1) === opsPort), [], `${name} publishes OPS_PORT`);
      assert.deepEqual(api.healthcheck?.test?.slice(-2), ['OPS_PORT', opsPort], `${name}: healthcheck`);
    }
  });

  test("the API image's own HEALTHCHECK asks OPS_PORT first, then API_PORT, so it holds with OPS_PORT set or not", () => {
    assert.match(readFileSync(join(root, 'api/Dockerfile'), 'utf8'), /^HEALTHCHECK .*CMD \["bun", "common\/src\/healthcheck\.ts", "OPS_PORT", "API_PORT", "3000"\]$/m);
  });
});

describe('docker-compose.yml cluster profile: three RabbitMQ nodes in one cluster, the services given all three', { skip }, () => {
  const nodes = ['rabbit-1', 'rabbit-2', 'rabbit-3'];
  const clusterConf = readFileSync(join(root, 'deploy/rabbitmq/cluster.conf'), 'utf8');

  test('the nodes start only with --profile cluster, on the default node\'s image, with one cookie and their own data', () => {
    const volumes = new Set<string>();
    for (const name of nodes) {
      const node = services[name]!;
      assert.deepEqual(node.profiles, ['cluster'], `${name}: profiles`);
      assert.equal(node.image, services.rabbitmq!.image, `${name}: image`);
      assert.equal(node.hostname, name);
      assert.equal(node.environment?.RABBITMQ_ERLANG_COOKIE, services['rabbit-1']!.environment?.RABBITMQ_ERLANG_COOKIE);
      assert.ok(node.volumes?.some((volume) => String(volume).endsWith(':/etc/rabbitmq/conf.d/20-cluster.conf:ro')), `${name} mounts cluster.conf`);
      volumes.add(String(node.volumes?.find((volume) => String(volume).endsWith(':/var/lib/rabbitmq'))));
    }
    assert.equal(volumes.size, nodes.length, 'a data volume each');
  });

  test('cluster.conf names exactly the three nodes for classic peer discovery', () => {
    assert.match(clusterConf, /^cluster_formation\.peer_discovery_backend = classic_config$/m);
    const listed = [...clusterConf.matchAll(/^cluster_formation\.classic_config\.nodes\.\d+ = rabbit@(\S+)$/gm)].map((match) => match[1]);
    assert.deepEqual(listed, nodes);
  });

  test('the API and the consumer of the profile get every node in RABBITMQ_URL, in order', () => {
    for (const name of ['api-cluster', 'consumer-cluster']) {
      const service = services[name]!;
      assert.deepEqual(service.profiles, ['cluster'], `${name}: profiles`);
      const hosts = String(service.environment?.RABBITMQ_URL).split(',').map((url) => new URL(url).host);
      assert.deepEqual(hosts, nodes.map((node) => `${node}:5672`), name);
    }
  });
});
