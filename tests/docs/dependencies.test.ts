// The API's production dependency tree, read from the one lockfile (what `npm ci --omit=dev
// --workspace api` installs, in CI and in api/Dockerfile): exactly amqplib and @redis/client,
// pinned, with nothing under them, and ARCHITECTURE.md's Dependencies section shows that same tree.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from '../support/processes.ts';

interface LockedPackage {
  readonly version?: string;
  readonly link?: boolean;
  readonly resolved?: string;
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly optionalDependencies?: Readonly<Record<string, string>>;
  readonly peerDependencies?: Readonly<Record<string, string>>;
  readonly peerDependenciesMeta?: Readonly<Record<string, { readonly optional?: boolean }>>;
}

const read = (path: string): string => readFileSync(join(root, path), 'utf8');
const lock = JSON.parse(read('package-lock.json')) as { readonly packages: Readonly<Record<string, LockedPackage>> };

/** Where npm finds `name` for the package at `from`: its own node_modules, then each parent's. */
function locate(name: string, from: string): string | undefined {
  for (let at = from; ; at = at.includes('/node_modules/') ? at.slice(0, at.lastIndexOf('/node_modules/')) : '') {
    const path = at === '' ? `node_modules/${name}` : `${at}/node_modules/${name}`;
    if (lock.packages[path] !== undefined) return path;
    if (at === '') return undefined;
  }
}

/**
 * Every registry package a workspace needs at run time, as name@version: its dependencies, theirs,
 * optional ones and required peers (npm installs those); this repository's own workspaces are
 * followed but not listed.
 */
function productionTree(workspace: string): string[] {
  const found = new Set<string>();
  const visit = (path: string): void => {
    const entry = lock.packages[path]!;
    const target = entry.link === true ? entry.resolved! : path;
    const pkg = lock.packages[target]!;
    const required = Object.keys(pkg.peerDependencies ?? {}).filter((name) => pkg.peerDependenciesMeta?.[name]?.optional !== true);
    for (const name of [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {}), ...required]) {
      const at = locate(name, target);
      assert.ok(at !== undefined || pkg.optionalDependencies?.[name] !== undefined, `${target}: ${name} is not in the lockfile`);
      if (at === undefined) continue;
      const locked = lock.packages[at]!;
      const id = locked.link === true ? undefined : `${name}@${locked.version}`;
      if (id !== undefined && found.has(id)) continue;
      if (id !== undefined) found.add(id);
      visit(at);
    }
  };
  visit(workspace);
  return [...found].sort();
}

describe("the API's production dependencies", () => {
  const tree = productionTree('api');

  test('are exactly amqplib and @redis/client, each with no dependencies of its own', () => {
    const manifest = JSON.parse(read('api/package.json')) as { dependencies: Record<string, string> };
    assert.deepEqual(tree, [`@redis/client@${manifest.dependencies['@redis/client']}`, `amqplib@${manifest.dependencies.amqplib}`]);
  });

  test('are pinned to exact versions in api/package.json', () => {
    const manifest = JSON.parse(read('api/package.json')) as { dependencies: Record<string, string> };
    for (const [name, version] of Object.entries(manifest.dependencies)) assert.match(version, /^\d+\.\d+\.\d+$/, name);
  });

  test("ARCHITECTURE.md's Dependencies tree shows the API with exactly those", () => {
    const block = read('ARCHITECTURE.md').split('## Dependencies')[1]?.split('```')[1] ?? '';
    const lines = block.split('\n');
    const start = lines.findIndex((line) => line.includes('@event-tracker/api@'));
    assert.ok(start >= 0, 'no @event-tracker/api in the ARCHITECTURE.md tree');
    const api: string[] = [];
    for (const line of lines.slice(start + 1)) {
      if (!line.startsWith('│ ')) break;
      const name = /[├└]─[─┬] (\S+@\d[^\s]*)/.exec(line)?.[1];
      if (name !== undefined && !name.startsWith('@event-tracker/')) api.push(name);
    }
    assert.deepEqual(api.sort(), tree);
  });
});

describe('the benchmark peers (bench/peers)', () => {
  test('have a lockfile of their own and are in no part of the product lockfile', () => {
    const peers = JSON.parse(read('bench/peers/package.json')) as { dependencies: Record<string, string> };
    const peerLock = JSON.parse(read('bench/peers/package-lock.json')) as { readonly packages: Readonly<Record<string, LockedPackage>> };
    for (const name of ['fastify', 'express', 'express-rate-limit']) {
      assert.equal(peerLock.packages[`node_modules/${name}`]?.version, peers.dependencies[name], `${name} is pinned in bench/peers`);
      assert.ok(!Object.keys(lock.packages).some((path) => path.endsWith(`node_modules/${name}`)), `${name} is in package-lock.json`);
    }
    const workspaces = JSON.parse(read('package.json')).workspaces as string[];
    assert.ok(!workspaces.some((workspace) => workspace.startsWith('bench')), 'bench/peers is not a workspace');
  });
});
