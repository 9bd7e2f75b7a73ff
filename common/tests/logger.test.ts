import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createLogger } from '../src/logger.ts';

const LOGGER = join(import.meta.dirname, '../src/logger.ts');

/** A process that logs through the real stdout writer; its script gets `logger`. */
function logging(script: string) {
  const source = `import { createLogger } from ${JSON.stringify(LOGGER)};\nconst logger = createLogger({ service: 'test' });\n${script}`;
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], { stdio: ['ignore', 'pipe', 'ignore'] });
}

async function linesOf(child: ReturnType<typeof logging>): Promise<Array<Record<string, unknown>>> {
  const lines: Array<Record<string, unknown>> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  await once(child, 'close');
  return lines;
}

describe('logger', () => {
  test('one JSON line per call: numeric level, time, bindings, fields, msg, and err serialised', () => {
    const written: string[] = [];
    const logger = createLogger({ service: 'api' }, { write: (line) => written.push(line), now: () => 42, level: 'info' });
    logger.debug('hidden');
    logger.child({ batch: 7 }).warn('slow', { durationMs: 12, err: Object.assign(new Error('late'), { code: 'ETIMEDOUT' }) });
    assert.equal(written.length, 1);
    const line = JSON.parse(written[0]!) as Record<string, unknown> & { err: Record<string, unknown> };
    assert.deepEqual({ ...line, err: { ...line.err, stack: typeof line.err.stack } }, {
      level: 40,
      time: 42,
      service: 'api',
      batch: 7,
      durationMs: 12,
      msg: 'slow',
      err: { type: 'Error', message: 'late', code: 'ETIMEDOUT', stack: 'string' },
    });
  });

  test('stdout: every line gathered is written, in order, when the process exits at once', async () => {
    const lines = await linesOf(logging(`for (let i = 0; i < 2000; i++) logger.info('line', { i });\nprocess.exit(0);`));
    assert.deepEqual(lines.map((line) => line.i), Array.from({ length: 2000 }, (_, i) => i));
  });

  test('stdout: a line logged just before an uncaught exception is written', async () => {
    const lines = await linesOf(logging(`logger.error('about to fail');\nsetImmediate(() => { throw new Error('boom'); });`));
    assert.deepEqual(lines.map((line) => line.msg), ['about to fail']);
  });

  test('stdout: a line reaches stdout while the process keeps running, without waiting for its exit', async (t) => {
    const child = logging(`logger.info('still here');\nsetInterval(() => {}, 1000);`);
    t.after(() => child.kill('SIGKILL'));
    const [line] = (await once(createInterface({ input: child.stdout! }), 'line', { signal: AbortSignal.timeout(10_000) })) as [string];
    assert.equal((JSON.parse(line) as { msg: string }).msg, 'still here');
    assert.equal(child.exitCode, null, 'written while the process runs, not by its exit');
  });
});
