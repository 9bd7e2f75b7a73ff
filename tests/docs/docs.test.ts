// Keeps the documents honest about the code: every variable the services read (and every one
// docker-compose.yml uses) is in .env.example once, under the service that reads it, with the code's
// default; the status codes and problem types of API_DOCS.md and api/openapi.json are exactly
// those the API produces (api/src/errors.ts; per-operation behaviour is api/tests/openapi.test.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULTS as API_DEFAULTS } from '../../api/src/config.ts';
import { DEFAULTS as CONSUMER_DEFAULTS } from '../../consumer/src/config.ts';
import { root } from '../support/processes.ts';

const read = (path: string): string => readFileSync(join(root, path), 'utf8');

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join(dir, file));
}

/**
 * Variable names each service's source reads (its own and common/'s, which it runs too):
 * `process.env.NAME`, `env.NAME`, `env['NAME']`, and `reader('NAME'` for every EnvReader method.
 */
function variablesRead(service: 'api' | 'consumer'): Set<string> {
  const files = [...sourceFiles(`${service}/src`), ...sourceFiles('common/src')].map((file) => read(file));
  // The EnvReader methods that take a variable's name, e.g. `read.integer('API_PORT', ...)`.
  const readers = [...read('common/src/env.ts').matchAll(/^ {2}(\w+)(?:<[^>]*>)?\(name: string/gm)].map((match) => match[1]!);
  assert.ok(readers.length > 0, 'found no variable readers in common/src/env.ts');
  const patterns = [/\benv\.([A-Z][A-Z0-9_]+)/g, /\benv\[\s*['"]([A-Z][A-Z0-9_]+)['"]\s*\]/g, new RegExp(`\\.(?:${readers.join('|')})\\(\\s*'([A-Z][A-Z0-9_]+)'`, 'g')];
  const names = new Set<string>();
  for (const text of files) for (const pattern of patterns) for (const match of text.matchAll(pattern)) names.add(match[1]!);
  return names;
}

const apiReads = variablesRead('api');
const consumerReads = variablesRead('consumer');
const DEFAULTS: Readonly<Record<string, string | number>> = { ...API_DEFAULTS, ...CONSUMER_DEFAULTS };
const required = new Set([...apiReads, ...consumerReads].filter((name) => !(name in DEFAULTS)));

/** `${NAME:-default}` placeholders of docker-compose.yml: the variables .env can set for compose. */
const composeText = read('docker-compose.yml');
const composeDefaults = new Map([...composeText.matchAll(/\$\{([A-Z][A-Z0-9_]*):-([^}]*)\}/g)].map((match) => [match[1]!, match[2]!]));
const composeOnly = [...composeDefaults.keys()].filter((name) => !apiReads.has(name) && !consumerReads.has(name));

const everyVariable = new Set([...apiReads, ...consumerReads, ...composeDefaults.keys()]);

/** The value a document must give as the default, or undefined for a required variable. */
function expectedDefault(name: string): string | undefined {
  if (name in DEFAULTS) return String(DEFAULTS[name]);
  return composeDefaults.get(name);
}

interface EnvEntry {
  readonly value: string;
  /** The comment lines right above the variable, joined, or undefined when there are none. */
  readonly comment: string | undefined;
  /** The `## ` heading the variable is listed under. */
  readonly section: string;
}

function parseEnvExample(): Map<string, EnvEntry> {
  const entries = new Map<string, EnvEntry>();
  let comment: string[] = [];
  let section = '';
  for (const line of read('.env.example').split('\n')) {
    const assignment = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (assignment !== null) {
      assert.ok(!entries.has(assignment[1]!), `.env.example sets ${assignment[1]} twice`);
      entries.set(assignment[1]!, { value: assignment[2]!, comment: comment.length > 0 ? comment.join(' ') : undefined, section });
    }
    if (line.startsWith('## ')) section = line.slice(3);
    comment = line.startsWith('# ') ? [...comment, line.slice(2)] : [];
  }
  return entries;
}

/** The lines of a markdown document with fenced code blocks blanked, so `# ...` inside them is not a heading. */
function proseLines(markdown: string): string[] {
  let fenced = false;
  return markdown.split('\n').map((line) => {
    if (line.startsWith('```')) fenced = !fenced;
    return fenced || line.startsWith('```') ? '' : line;
  });
}

/**
 * The rows (trimmed cells, without the header and separator) of the first table after `heading`,
 * or after `subheading` when it is given and lies in that heading's section.
 */
function tableAfter(markdown: string, heading: string, subheading?: string): string[][] {
  const lines = proseLines(markdown);
  let start = lines.indexOf(heading);
  assert.ok(start >= 0, `no "${heading}" heading`);
  if (subheading !== undefined) {
    const level = heading.indexOf(' ');
    const sectionEnd = lines.findIndex((line, i) => i > start && /^#+ /.test(line) && line.indexOf(' ') <= level);
    const sub = lines.indexOf(subheading, start);
    assert.ok(sub > start && (sectionEnd < 0 || sub < sectionEnd), `no "${subheading}" under "${heading}"`);
    start = sub;
  }
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('#')) break;
    if (!line.startsWith('|')) {
      if (rows.length > 0) break;
      continue;
    }
    rows.push(line.slice(1, line.endsWith('|') ? -1 : undefined).split(' | ').map((cell) => cell.trim()));
  }
  assert.ok(rows.length > 2, `no table after "${subheading ?? heading}"`);
  return rows.slice(2);
}

const unquote = (cell: string): string => cell.replace(/^`(.*)`$/, '$1');

describe('.env.example', () => {
  const entries = parseEnvExample();

  test('the reader scan sees every DEFAULTS key, so it would see a new variable too', () => {
    for (const name of Object.keys(API_DEFAULTS)) assert.ok(apiReads.has(name), `api/src never reads ${name}`);
    for (const name of Object.keys(CONSUMER_DEFAULTS)) assert.ok(consumerReads.has(name), `consumer/src never reads ${name}`);
    for (const name of ['RABBITMQ_URL', 'DATABASE_URL']) assert.ok(required.has(name), `the scan missed the required ${name}`);
  });

  test('lists, with a comment, every variable either service reads or docker-compose.yml uses', () => {
    assert.ok(composeOnly.length > 0, 'found no compose-only variables in docker-compose.yml');
    for (const name of everyVariable) {
      const entry = entries.get(name);
      assert.ok(entry !== undefined, `.env.example lacks ${name}`);
      assert.ok(entry.comment !== undefined && entry.comment.length > 0, `${name} in .env.example has no comment line above it`);
    }
  });

  test('marks "(compose)" exactly the service variables docker-compose.yml passes on from .env', () => {
    for (const name of [...apiReads, ...consumerReads]) {
      assert.equal(entries.get(name)?.comment?.endsWith('(compose)'), composeDefaults.has(name), `.env.example: (compose) marker of ${name}`);
    }
  });

  test('lists nothing that nobody reads', () => {
    assert.deepEqual([...entries.keys()].filter((name) => !everyVariable.has(name)), []);
  });

  test("gives each variable the code's default (and compose's, for the compose-only ones)", () => {
    for (const [name, { value }] of entries) {
      const expected = expectedDefault(name);
      if (expected !== undefined) assert.equal(value, expected, `.env.example: ${name}`);
      else assert.notEqual(value, '', `.env.example: required ${name} needs an example value`);
    }
  });

  test('the two services agree on the defaults of the variables they share, and compose agrees with both', () => {
    for (const name of Object.keys(API_DEFAULTS).filter((key) => key in CONSUMER_DEFAULTS)) {
      assert.equal(String(API_DEFAULTS[name as keyof typeof API_DEFAULTS]), String(CONSUMER_DEFAULTS[name as keyof typeof CONSUMER_DEFAULTS]), name);
    }
    for (const [name, value] of composeDefaults) if (name in DEFAULTS) assert.equal(value, String(DEFAULTS[name]), `docker-compose.yml default of ${name}`);
  });
});

describe('.env.example sections', () => {
  const entries = parseEnvExample();

  test('lists each variable under the service that reads it: both, the API, the consumer, or compose only', () => {
    for (const [name, { section }] of entries) {
      const readBy = apiReads.has(name) && consumerReads.has(name) ? 'Both services' : apiReads.has(name) ? 'API' : consumerReads.has(name) ? 'Consumer' : 'docker compose only';
      assert.ok(section.startsWith(readBy), `.env.example lists ${name} under "${section}", not "${readBy}"`);
    }
  });

  test('starts with "Required" the comment of exactly the variables without a default, and gives each a meaning', () => {
    for (const [name, { comment }] of entries) {
      assert.equal(comment?.startsWith('Required') ?? false, expectedDefault(name) === undefined, `.env.example: "Required" of ${name}`);
      assert.ok((comment ?? '').length > 20, `.env.example: the meaning of ${name}`);
    }
  });
});

/** code -> [status, title] of every AppError subclass in api/src/errors.ts. */
function errorsFromSource(): Map<string, readonly [number, string]> {
  const source = read('api/src/errors.ts');
  const found = new Map([...source.matchAll(/super\(\s*'([a-z-]+)',\s*(\d{3}),\s*'([^']+)'/g)].map((match) => [match[1]!, [Number(match[2]), match[3]!] as const]));
  const union = /export type ErrorStatus = ([\d\s|]+);/.exec(source);
  assert.ok(union !== null, 'no ErrorStatus union in errors.ts');
  const statuses = union[1]!.split('|').map((status) => Number(status.trim()));
  assert.deepEqual([...new Set([...found.values()].map(([status]) => status))].sort(), statuses.sort(), 'ErrorStatus and the AppError subclasses disagree');
  return found;
}

interface OpenApiResponse {
  readonly $ref?: string;
  readonly content?: Record<string, { readonly schema?: { readonly allOf?: ReadonlyArray<{ readonly properties?: Record<string, { readonly const?: unknown; readonly enum?: readonly unknown[] }> }> } }>;
}
interface OpenApi {
  readonly paths: Record<string, Record<string, { readonly responses: Record<string, OpenApiResponse> }>>;
  readonly 'x-unrouted-responses': Record<string, OpenApiResponse>;
  readonly components: {
    readonly responses: Record<string, OpenApiResponse>;
    readonly schemas: { readonly Problem: { readonly properties: { readonly type: { readonly enum: readonly string[] } } } };
  };
}

describe('error statuses and problem types', () => {
  const errors = errorsFromSource();
  const errorStatuses = [...new Set([...errors.values()].map(([status]) => status))].sort();
  const openapi = JSON.parse(read('api/openapi.json')) as OpenApi;
  const operations = Object.entries(openapi.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ heading: `## ${method.toUpperCase()} ${path}`, responses: operation.responses })),
  );
  const unrouted = { heading: '## Any other path or method', responses: openapi['x-unrouted-responses'] };

  test('api/openapi.json documents exactly the error statuses and problem types errors.ts can produce', () => {
    const documented = [...operations, unrouted].flatMap(({ responses }) => Object.keys(responses).map(Number));
    assert.deepEqual([...new Set(documented.filter((status) => status >= 400))].sort(), errorStatuses);
    assert.deepEqual([...openapi.components.schemas.Problem.properties.type.enum].sort(), [...errors.keys()].map((code) => `/problems/${code}`).sort());
    for (const [, response] of Object.entries(openapi.components.responses)) {
      const constants = response.content?.['application/problem+json']?.schema?.allOf?.[1]?.properties;
      if (constants === undefined) continue;
      // One problem type (`const`), or several sharing a status (`enum`: the two 503s).
      for (const type of constants.type?.enum ?? [constants.type?.const]) {
        const code = String(type).replace('/problems/', '');
        assert.equal(constants.status?.const, errors.get(code)?.[0], `openapi.json: status of /problems/${code}`);
      }
    }
  });

  const apiDocs = read('API_DOCS.md');

  test('API_DOCS.md lists each problem type with the status and title errors.ts gives it', () => {
    const rows = tableAfter(apiDocs, '## Error format');
    const listed = new Map(rows.map(([type, status, title]) => [unquote(type!).replace('/problems/', ''), [Number(status), title] as const]));
    assert.deepEqual(listed, errors);
  });

  test('API_DOCS.md gives each operation exactly the status codes api/openapi.json gives it', () => {
    for (const { heading, responses } of [...operations, unrouted]) {
      const codes = tableAfter(apiDocs, heading, '### Responses').map(([status]) => Number(status));
      assert.deepEqual(codes.sort(), Object.keys(responses).map(Number).sort(), `API_DOCS.md "${heading}"`);
    }
  });
});

describe('commands in the documents', () => {
  const scripts = Object.keys((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts);

  for (const document of ['README.md', 'API_DOCS.md', 'OPERATIONS.md', 'TESTING.md', 'ARCHITECTURE.md', 'SCALING.md']) {
    test(`every \`npm run\` in ${document} names a script of package.json`, () => {
      const named = [...read(document).matchAll(/npm run ([\w:-]+)/g)].map((match) => match[1]!);
      assert.deepEqual(named.filter((name) => !scripts.includes(name)), []);
    });
  }
});

describe('TESTING.md "Guarantees and how they are tested"', () => {
  const section = read('TESTING.md').split('## Guarantees and how they are tested')[1]?.split('\n## ')[0] ?? '';
  const rows = section.split('\n').filter((line) => line.startsWith('| ') && line.includes('.test.ts'));

  test('every test it names exists in the file it names', () => {
    assert.ok(rows.length >= 10, `found ${rows.length} rows`);
    const missing: string[] = [];
    for (const row of rows) {
      // Each cell part reads: `path/to/file.test.ts`: "test name", "another test name"
      for (const [, file, names] of row.matchAll(/`([\w/.]+\.test\.ts)`(?:: ((?:"[^"]+"(?:, )?)+))?/g)) {
        const source = read(file!);
        for (const [, name] of (names ?? '').matchAll(/"([^"]+)"/g)) {
          // "N seeded fuzz cases" stands for a count the code writes as a number or a ${...} expression.
          const pattern = name!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\bN\b/g, '(?:\\d+|\\$\\{[^}]+\\})');
          if (!new RegExp(pattern).test(source)) missing.push(`${file}: "${name}"`);
        }
      }
    }
    assert.deepEqual(missing, []);
  });
});
