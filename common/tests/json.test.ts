import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_JSON_DEPTH, decodeJson } from '../src/json.ts';

const bytes = (text: string) => Buffer.from(text);
const nested = (levels: number, open = '{"a":', close = '}') => `${open.repeat(levels)}0${close.repeat(levels)}`;

describe('decodeJson', () => {
  test(`takes JSON nested ${MAX_JSON_DEPTH} levels and refuses one more, before parsing it`, () => {
    assert.deepEqual(decodeJson(bytes(`[${nested(MAX_JSON_DEPTH - 1)}]`)).ok, true);
    assert.deepEqual(decodeJson(bytes(nested(MAX_JSON_DEPTH + 1, '[', ']'))), { ok: false, reason: `The body is nested deeper than ${MAX_JSON_DEPTH} levels` });
    // Not even well-formed: refused for its depth alone, without the parser's help.
    assert.deepEqual(decodeJson(bytes('['.repeat(200_000))), { ok: false, reason: `The body is nested deeper than ${MAX_JSON_DEPTH} levels` });
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
