// Runs every transcript README.md and API_DOCS.md mark as runnable, against a real API on the real
// RabbitMQ, and compares what it prints with what the document shows.
//
// The marker is an HTML comment on the line before a ```console block:
//
//   <!-- runnable -->                     or   <!-- runnable: WRITE_KEYS=web=wk_live_9f3kQ2 -->
//
// (the second starts the API with those variables). In the block, each `$ ` line is a command, run by
// bash in an empty directory, and the lines up to the next command are what it prints. Each block
// gets an API of its own (so its rate-limit window starts empty), on a fresh queue; its
// `http://localhost:3000` becomes that API's address. The output must be the documented one, except
// for what changes from run to run: the `Date` header, the seconds of `RateLimit-Reset`,
// `Retry-After` and a 429's `retry in N s`, and UUIDs the command did not send (the API draws them).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { root, startReady, stopService } from '../support/processes.ts';
import { deleteTopology, serviceUrl, servicesMissing, uniqueName } from '../support/services.ts';

const run = promisify(execFile);
const skip = servicesMissing('RABBITMQ_URL');

interface Transcript {
  readonly line: number;
  readonly env: Readonly<Record<string, string>>;
  readonly steps: ReadonlyArray<{ readonly command: string; readonly output: string }>;
}

function transcripts(document: string): Transcript[] {
  const lines = readFileSync(join(root, document), 'utf8').split('\n');
  const found: Transcript[] = [];
  lines.forEach((marker, index) => {
    const match = /^<!-- runnable(?:: (.*))? -->$/.exec(marker);
    if (match === null) return;
    assert.equal(lines[index + 1], '```console', `${document}:${index + 1}: a runnable marker must precede a console block`);
    const env = Object.fromEntries((match[1] ?? '').split(' ').filter(Boolean).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
    const steps: { command: string; output: string[] }[] = [];
    for (const line of lines.slice(index + 2, lines.indexOf('```', index + 2))) {
      if (line.startsWith('$ ')) steps.push({ command: line.slice(2), output: [] });
      else steps.at(-1)?.output.push(line);
    }
    assert.ok(steps.length > 0, `${document}:${index + 1}: a runnable block without a command`);
    found.push({ line: index + 1, env, steps: steps.map(({ command, output }) => ({ command, output: output.join('\n') })) });
  });
  return found;
}

/** What may differ from run to run, replaced by a placeholder; UUIDs in `sent` are kept. */
function normalize(text: string, sent: string): string {
  return text
    .replace(/\r\n/g, '\n')
    .trimEnd()
    .replace(/^Date: .*$/gm, 'Date: <date>')
    .replace(/^(RateLimit-Reset|Retry-After): \d+$/gm, '$1: <seconds>')
    .replace(/retry in \d+ s\./g, 'retry in <seconds> s.')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (uuid) => (sent.includes(uuid) ? uuid : '<uuid>'));
}

for (const document of ['README.md', 'API_DOCS.md']) {
  describe(`${document}: runnable transcripts`, () => {
    const blocks = transcripts(document);

    test('has some', () => {
      assert.ok(blocks.length > 0, `${document} marks no transcript runnable`);
    });

    for (const block of blocks) {
      test(`${document}:${block.line} prints what it shows`, { skip }, async (t) => {
        const queue = uniqueName('docs_runnable');
        t.after(() => deleteTopology(queue));
        const api = await startReady('api', 'node20-tsx', { RABBITMQ_URL: serviceUrl('RABBITMQ_URL'), QUEUE_NAME: queue, EVENTS_EXCHANGE: queue, API_HOST: '127.0.0.1', API_PORT: '0', ...block.env });
        t.after(() => stopService(api));
        const cwd = mkdtempSync(join(tmpdir(), 'docs-runnable-'));
        t.after(() => rmSync(cwd, { recursive: true, force: true }));
        for (const { command, output } of block.steps) {
          const { stdout } = await run('bash', ['-o', 'pipefail', '-c', command.replaceAll('http://localhost:3000', `http://127.0.0.1:${api.port}`)], { cwd, timeout: 60_000, maxBuffer: 1 << 20 });
          assert.equal(normalize(stdout, command), normalize(output, command), `${document}:${block.line}: $ ${command}`);
        }
      });
    }
  });
}
