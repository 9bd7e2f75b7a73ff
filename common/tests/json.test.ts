import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_JSON_DEPTH, decodeJson, parsePart, splitBatch, type Decoded } from '../src/json.ts';

const bytes = (text: string) => Buffer.from(text);
const nested = (levels: number, open = '{"a":', close = '}') => `${open.repeat(levels)}0${close.repeat(levels)}`;

describe('decodeJson', () => {
  test(`takes JSON nested ${MAX_JSON_DEPTH} levels and refuses one more, before parsing it`, () => {
    assert.deepEqual(decodeJson(bytes(`[${nested(MAX_JSON_DEPTH - 1)}]`)).ok, true);
    assert.deepEqual(decodeJson(bytes(nested(MAX_JSON_DEPTH + 1, '[', ']'))), { ok: false, reason: `The body is nested deeper than ${MAX_JSON_DEPTH} levels` });
    // Not even well-formed: refused for its depth alone, without the parser's help.
    assert.deepEqual(decodeJson(bytes('['.repeat(200_000))), { ok: false, reason: `The body is nested deeper than ${MAX_JSON_DEPTH} levels` });
  });

  test(`takes more than ${MAX_JSON_DEPTH} brackets side by side: it is depth that counts, not brackets`, () => {
    const wide = JSON.stringify({ list: Array.from({ length: 3 * MAX_JSON_DEPTH }, (_, i) => ({ i, tags: [] })) });
    assert.deepEqual(decodeJson(bytes(wide)), { ok: true, value: JSON.parse(wide) });
    const deepAfterWide = `[${'[],'.repeat(3 * MAX_JSON_DEPTH)}${nested(MAX_JSON_DEPTH, '[', ']')}]`;
    assert.deepEqual(decodeJson(bytes(deepAfterWide)), { ok: false, reason: `The body is nested deeper than ${MAX_JSON_DEPTH} levels` });
  });

  test('counts no bracket inside a string, escaped quotes and backslashes included', () => {
    const inStrings = JSON.stringify({ text: '['.repeat(100), quoted: `\\"${'{'.repeat(100)}`, backslash: '\\', after: '['.repeat(100) });
    assert.deepEqual(decodeJson(bytes(inStrings)), { ok: true, value: JSON.parse(inStrings) });
  });

  test('names an empty body, malformed UTF-8 and malformed JSON', () => {
    assert.deepEqual(decodeJson(bytes('')), { ok: false, reason: 'The body is empty' });
    assert.deepEqual(decodeJson(Uint8Array.of(0x7b, 0xff, 0x7d)), { ok: false, reason: 'The body is not valid UTF-8' });
    const result = decodeJson(bytes('{"a":'));
    assert.equal(result.ok, false);
    assert.match((result as { reason: string }).reason, /^The body is not valid JSON: /);
  });
});

/** A body as the batch routes parse it: split, then the envelope and each event on their own. */
function bySplit(body: Uint8Array): Decoded | 'not split' {
  const split = splitBatch(body);
  if (!split.ok) return 'not split';
  const envelope = parsePart(split.envelope, true);
  if (!envelope.ok) return envelope;
  const events: unknown[] = [];
  for (const [start, end] of split.events) {
    const event = parsePart(body.subarray(start, end));
    if (!event.ok) return event;
    events.push(event.value);
  }
  (envelope.value as { batch: unknown[] }).batch.push(...events);
  return envelope;
}

/** A small seeded generator (mulberry32), so a failure names a body that can be made again. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** JSON text with what trips a scanner: brackets, quotes, commas and backslashes inside strings, odd spacing, "batch" spelled with escapes. */
function jsonText(next: () => number, depth = 0): string {
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
  const space = () => pick(['', ' ', '\n', '\t ', '\r\n']);
  const strings = ['"batch"', '"b\\u0061tch"', '"a"', '"[,{"', '"\\"', '"\\"]"', '"\\\\"', '"é☃"', '""'];
  const roll = next();
  if (depth > 3 || roll < 0.3) return pick(['0', '-1.5e3', 'true', 'null', ...strings]);
  const items = Array.from({ length: Math.floor(next() * 4) }, () => jsonText(next, depth + 1));
  if (roll < 0.6) return `[${space()}${items.join(`${space()},${space()}`)}${space()}]`;
  return `{${space()}${items.map((item) => `${pick(strings)}${space()}:${space()}${item}`).join(`,${space()}`)}${space()}}`;
}

describe('splitBatch', () => {
  test('parsed by parts, any body gives what JSON.parse of it whole gives, and fails where it fails', () => {
    const next = random(21);
    let split = 0;
    for (let run = 0; run < 20_000; run++) {
      const events = Array.from({ length: Math.floor(next() * 5) }, () => jsonText(next, 1)).join(next() < 0.5 ? ',' : ' , ');
      let text = `{${next() < 0.5 ? ' ' : ''}"batch":${next() < 0.8 ? `[${events}]` : jsonText(next, 1)}${next() < 0.3 ? `,"batch":${jsonText(next, 1)}` : ''}${next() < 0.3 ? `,"x":${jsonText(next, 1)}` : ''}}`;
      // One in three mangled: a character dropped, doubled or swapped for a bracket, a comma or a quote.
      if (next() < 0.33) {
        const at = Math.floor(next() * text.length);
        text = text.slice(0, at) + ['', text[at]! + text[at]!, ']', '}', ',', '"', '\\'][Math.floor(next() * 7)] + text.slice(at + 1);
      }
      const result = bySplit(bytes(text));
      if (result === 'not split') continue;
      split++;
      let whole: Decoded;
      try {
        whole = { ok: true, value: JSON.parse(text) };
      } catch {
        whole = { ok: false, reason: '' };
      }
      assert.equal(result.ok, whole.ok, text);
      if (result.ok && whole.ok) assert.deepEqual(result.value, whole.value, text);
    }
    assert.ok(split > 7_000, `only ${split} of the bodies were split`);
  });

  test('finds each event of the last "batch" array of the top-level object, and only there', () => {
    const text = '{"batch": [ {"a":"],["}, [1,2] ,3 ], "b":{"batch":[9]}}';
    const split = splitBatch(bytes(text));
    assert.ok(split.ok);
    assert.deepEqual(split.events.map(([start, end]) => text.slice(start, end)), [' {"a":"],["}', ' [1,2] ', '3 ']);
    assert.equal(Buffer.from(split.envelope).toString(), '{"batch": [], "b":{"batch":[9]}}');
    assert.deepEqual(splitBatch(bytes('{"batch":[]}')), { ok: true, envelope: new Uint8Array(bytes('{"batch":[]}')), events: [] });
    assert.deepEqual(splitBatch(bytes('{"batch":[1],"batch":{}}')), { ok: false, tooDeep: false });
    assert.deepEqual(splitBatch(bytes('[{"batch":[1]}]')), { ok: false, tooDeep: false });
    assert.deepEqual(splitBatch(bytes(`{"batch":[${nested(MAX_JSON_DEPTH)}]}`)), { ok: false, tooDeep: true });
    assert.deepEqual(splitBatch(bytes(nested(MAX_JSON_DEPTH + 1, '[', ']'))), { ok: false, tooDeep: true });
  });

  test('keeps a byte-order mark at the start of a body only: inside one JSON.parse refuses it', () => {
    const split = splitBatch(bytes('\ufeff{"batch":[\ufeff1]}'));
    assert.ok(split.ok);
    assert.equal(parsePart(split.envelope, true).ok, true);
    assert.equal(parsePart(bytes('\ufeff1')).ok, false);
  });
});
