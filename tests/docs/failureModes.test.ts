// ARCHITECTURE.md's failure-mode tables against the code that decides: every dead-letter cause of
// consumer/src/services/verdict.ts with the file that gives it and the reasons that file writes, and
// every 503 the API answers (each publish failure of api/src/publisher.ts with its problem type and
// detail, each shed reason of api/src/overload.ts) with the 503 problem types of api/src/errors.ts.
// A cell's `<...>` stands for what the code fills in; the text before it must be the code's.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from '../support/processes.ts';

const read = (path: string): string => readFileSync(join(root, path), 'utf8');

/** The rows (trimmed cells) of the table right after `heading` in ARCHITECTURE.md. */
function tableAfter(heading: string): string[][] {
  const lines = read('ARCHITECTURE.md').split('\n');
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, `ARCHITECTURE.md has no "${heading}"`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('#')) break;
    if (line.startsWith('|')) rows.push(line.slice(1, -1).split(' | ').map((cell) => cell.trim()));
    else if (rows.length > 0) break;
  }
  assert.ok(rows.length > 2, `no table after "${heading}"`);
  return rows.slice(2);
}

/** The code spans of a cell. */
const spans = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1]!);

/** The members of `export type <name> = 'a' | 'b' ...;` in `file`. */
function union(file: string, name: string): string[] {
  const declaration = new RegExp(`export type ${name} = ([^;]+);`).exec(read(file));
  assert.ok(declaration !== null, `no ${name} in ${file}`);
  return [...declaration[1]!.matchAll(/'([a-z-]+)'/g)].map((match) => match[1]!).sort();
}

/** The fixed text a documented `<...>` template or a code template literal starts with. */
const literalStart = (text: string, placeholder: RegExp): string => text.split(placeholder)[0]!;

describe('ARCHITECTURE.md "Why a message is dead-lettered"', () => {
  const rows = tableAfter('### Why a message is dead-lettered');

  test('lists exactly the causes verdict.ts defines', () => {
    assert.deepEqual(rows.map(([cause]) => spans(cause!)[0]).sort(), union('consumer/src/services/verdict.ts', 'RejectionCause'));
  });

  test('names, for each cause, a file that gives it, and only reasons those files write', () => {
    for (const [causeCell, filesCell, , reasonsCell] of rows) {
      const cause = spans(causeCell!)[0]!;
      const sources = spans(filesCell!).map(read);
      assert.ok(sources.some((source) => source.includes(`rejection('${cause}'`)), `no rejection('${cause}', ...) in ${filesCell}`);
      // A reason quoting the event contract's field problems (e.g. `payload.a.b keys ...`) comes from
      // the contract, whose messages API_DOCS.md lists; the others are written by the files named.
      for (const reason of spans(reasonsCell!).filter((text) => !/^payload\./.test(text))) {
        const fixed = literalStart(reason, /<[^>]*>/);
        assert.ok(fixed.length >= 10, `"${reason}" gives too little fixed text to check`);
        assert.ok(sources.some((source) => source.includes(fixed)), `${cause}: no file of ${filesCell} writes "${fixed}"`);
      }
    }
  });
});

describe('ARCHITECTURE.md "Why the API answers 503"', () => {
  const rows = tableAfter('### Why the API answers 503').map(([reason, type, detail]) => ({
    reason: spans(reason!)[0]!,
    type: spans(type!)[0]!.replace('/problems/', ''),
    detail: spans(detail!)[0]!,
  }));

  /** reason -> problem type -> the fixed start of each detail, from every publish failure publisher.ts raises. */
  const raised = [...read('api/src/publisher.ts').matchAll(/new (QueueUnavailable|PublishOutcomeUnknown)\('([a-z-]+)', [`']([^`']*)[`']/g)].map((match) => ({
    reason: match[2]!,
    type: match[1] === 'QueueUnavailable' ? 'queue-unavailable' : 'publish-outcome-unknown',
    detail: literalStart(match[3]!, /\$\{/),
  }));

  test('has a row for each reason and problem type the publisher pairs, and no other publish row', () => {
    assert.ok(raised.length >= 9, `found ${raised.length} publish failures in publisher.ts`);
    const pairs = (list: ReadonlyArray<{ reason: string; type: string }>) => [...new Set(list.map(({ reason, type }) => `${reason} -> ${type}`))].sort();
    assert.deepEqual(pairs(rows.filter(({ type }) => type !== 'overloaded')), pairs(raised));
    assert.deepEqual([...new Set(raised.map(({ reason }) => reason))].sort(), union('api/src/errors.ts', 'PublishFailure'), 'publisher.ts raises every PublishFailure');
  });

  test("gives each publish failure the detail the publisher writes", () => {
    for (const { reason, type, detail } of raised) {
      const row = rows.find((candidate) => candidate.reason === reason && candidate.type === type)!;
      const documented = literalStart(row.detail, /<[^>]*>/);
      assert.ok(detail.startsWith(documented) || documented.startsWith(detail), `${reason} (${type}): documented "${row.detail}", the code writes "${detail}..."`);
    }
  });

  test('has a /problems/overloaded row for each reason the load shedder gives, with its detail', () => {
    const shed = rows.filter(({ type }) => type === 'overloaded');
    assert.deepEqual(shed.map(({ reason }) => reason).sort(), union('api/src/overload.ts', 'ShedReason'));
    const errors = read('api/src/errors.ts');
    for (const { detail } of shed) assert.ok(errors.includes(literalStart(detail, /<[^>]*>/)), `errors.ts has no "${detail}"`);
  });

  test('covers exactly the 503 problem types errors.ts defines', () => {
    const defined = [...read('api/src/errors.ts').matchAll(/'([a-z-]+)',\s*503,/g)].map((match) => match[1]!);
    assert.deepEqual([...new Set(rows.map(({ type }) => type))].sort(), [...new Set(defined)].sort());
  });
});
