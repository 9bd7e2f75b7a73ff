// Each service's production dependency tree as a CycloneDX SBOM, for auditors: `npm sbom --omit dev`
// per workspace, read from the installed tree that `npm ci` made from the lockfile, written to
// sbom/<service>.cdx.json. With --check it writes nothing and fails when a file differs from the tree,
// so a dependency added without regenerating them fails CI. What depends on the run rather than the
// tree is left out or fixed: the serial number, the timestamp and npm's own version are dropped, and
// the root is named by package.json (npm names it after the checkout's folder).
// Usage: node --import tsx scripts/sbom.ts [--check]   (npm run sbom)
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVICES = ['api', 'consumer'] as const;
const root = join(fileURLToPath(import.meta.url), '../..');
const ROOT_NAME = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string }).name;

function sbom(service: string): string {
  const text = execFileSync('npm', ['sbom', '--omit', 'dev', '--sbom-format', 'cyclonedx', '--workspace', service], { cwd: root, encoding: 'utf8' });
  const { serialNumber: _serial, metadata, ...rest } = JSON.parse(text) as { serialNumber: string; metadata: { timestamp: string; tools: unknown; component: object } };
  const { timestamp: _timestamp, tools: _tools, component, ...stable } = metadata;
  return `${JSON.stringify({ ...rest, metadata: { ...stable, component: { ...component, name: ROOT_NAME } } }, null, 2)}\n`;
}

const check = process.argv.includes('--check');
let stale = 0;
for (const service of SERVICES) {
  const path = join(root, 'sbom', `${service}.cdx.json`);
  const current = sbom(service);
  const components = (JSON.parse(current) as { components: unknown[] }).components.length;
  if (!check) {
    writeFileSync(path, current);
    console.log(`${path}: ${components} components`);
    continue;
  }
  let saved = '';
  try {
    saved = readFileSync(path, 'utf8');
  } catch {
    // missing: reported as stale below
  }
  if (saved === current) console.log(`sbom/${service}.cdx.json matches the installed tree (${components} components)`);
  else {
    stale += 1;
    console.error(`sbom/${service}.cdx.json does not match the installed tree: run npm run sbom and commit it`);
  }
}
if (stale > 0) process.exit(1);
