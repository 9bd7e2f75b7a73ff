import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FieldError } from '@event-tracker/shared';
import { InvalidEvent } from '../src/errors.ts';
import { MAX_REPORTED_ERRORS } from '@event-tracker/common/eventContract.ts';
import { validateActivity, validateLegacyTrack } from '../src/validation.ts';
import { VALID_EVENT } from './helpers.ts';

/** The field errors `validate` throws for `body`. */
function errorsOf(validate: (body: unknown) => unknown, body: unknown): readonly FieldError[] {
  try {
    validate(body);
  } catch (error) {
    assert.ok(error instanceof InvalidEvent, String(error));
    return error.errors ?? [];
  }
  assert.fail('the body should have been rejected');
}

function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let level = 1; level < depth; level++) value = { c: value };
  return value;
}

describe('validateActivity', () => {
  test('returns a valid event unchanged', () => {
    assert.deepEqual(validateActivity(structuredClone(VALID_EVENT)), VALID_EVENT);
  });

  test('accepts a UUID id and lower-cases it, so one idempotency key is one messageId', () => {
    const event = validateActivity({ ...VALID_EVENT, id: 'A1B2C3D4-E5F6-7890-1234-567890ABCDEF' });
    assert.equal(event.id, 'a1b2c3d4-e5f6-7890-1234-567890abcdef');
  });

  test('reports every invalid field at once', () => {
    const errors = errorsOf(validateActivity, { id: 'nope', userId: 7, eventType: '', timestamp: '2023-02-30T10:00:00Z', payload: null });
    assert.deepEqual(errors, [
      { field: 'id', message: 'must be a UUID such as 123e4567-e89b-12d3-a456-426614174000' },
      { field: 'userId', message: 'must be a string, not a number' },
      { field: 'eventType', message: 'must not be empty' },
      { field: 'timestamp', message: 'has no such day in that month' },
      { field: 'payload', message: 'must be a JSON object, not null' },
    ]);
  });

  test('reports each missing field as required', () => {
    assert.deepEqual(
      errorsOf(validateActivity, {}).map(({ field, message }) => `${field} ${message}`),
      ['userId is required', 'eventType is required', 'timestamp is required', 'payload is required'],
    );
  });

  test('names each unknown top-level field', () => {
    const errors = errorsOf(validateActivity, { ...VALID_EVENT, user_id: 1, extra: true });
    assert.deepEqual(
      errors.map((error) => error.field),
      ['user_id', 'extra'],
    );
    assert.match(errors[0]!.message, /^is not a known field \(expected id, userId, eventType, timestamp, payload\)$/);
  });

  test('treats __proto__ and constructor at the top level as unknown fields, leaving Object.prototype alone', () => {
    const body: unknown = JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}');
    const fields = errorsOf(validateActivity, body).map((error) => error.field);
    assert.deepEqual(fields.slice(0, 2), ['__proto__', 'constructor']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('limits userId and eventType to 255 characters, counting code points', () => {
    assert.equal(validateActivity({ ...VALID_EVENT, userId: '😀'.repeat(255) }).userId.length, 510);
    assert.deepEqual(errorsOf(validateActivity, { ...VALID_EVENT, userId: 'u'.repeat(256), eventType: 'e'.repeat(256) }), [
      { field: 'userId', message: 'must be at most 255 characters' },
      { field: 'eventType', message: 'must be at most 255 characters' },
    ]);
  });

  test('rejects control, format and line-separator characters in userId and eventType', () => {
    for (const text of ['login\n', 'a\u0000b', 'tab\there', 'del\u007f', 'c1\u0085', 'zero\u200bwidth', 'bom\ufeffin', 'rtl\u202eoverride', 'line\u2028sep', 'para\u2029sep']) {
      assert.deepEqual(errorsOf(validateActivity, { ...VALID_EVENT, userId: text, eventType: text }), [
        { field: 'userId', message: 'must not contain control, format or line-separator characters' },
        { field: 'eventType', message: 'must not contain control, format or line-separator characters' },
      ]);
    }
  });

  test('rejects a userId or eventType that is blank after trimming Unicode white space', () => {
    for (const text of ['   ', '\u00a0', '\u3000\u2003', '\t\n']) {
      assert.deepEqual(errorsOf(validateActivity, { ...VALID_EVENT, userId: text, eventType: text }), [
        { field: 'userId', message: 'must not be blank' },
        { field: 'eventType', message: 'must not be blank' },
      ]);
    }
    assert.equal(validateActivity({ ...VALID_EVENT, userId: ' padded ' }).userId, ' padded ');
  });

  test('rejects lone surrogates in userId, eventType, payload strings and payload keys, anywhere', () => {
    const lone = JSON.parse('"\\ud800"') as string;
    const payload = { ok: '😀', bad: lone, list: ['x', JSON.parse('"a\\udc00b"')], [lone]: 1, nested: { [`k${lone}`]: true } };
    assert.deepEqual(errorsOf(validateActivity, { ...VALID_EVENT, userId: lone, eventType: `e${lone}`, payload }), [
      { field: 'userId', message: 'must be well-formed Unicode (no lone surrogates)' },
      { field: 'eventType', message: 'must be well-formed Unicode (no lone surrogates)' },
      { field: 'payload.bad', message: 'must be well-formed Unicode (no lone surrogates)' },
      { field: 'payload.list[1]', message: 'must be well-formed Unicode (no lone surrogates)' },
      { field: `payload.${lone}`, message: 'keys must be well-formed Unicode (no lone surrogates)' },
      { field: `payload.nested.k${lone}`, message: 'keys must be well-formed Unicode (no lone surrogates)' },
    ]);
  });

  test('rejects NUL and "." in keys at any depth, and keeps them in values', () => {
    const payload = JSON.parse('{"a\\u0000b":1,"deep":{"x.y":2,"list":[{"p.q":3}]},"value":"a.b\\u0000c"}');
    assert.deepEqual(errorsOf(validateActivity, { ...VALID_EVENT, payload }), [
      { field: 'payload.a\u0000b', message: 'keys must not contain NUL (\\u0000)' },
      { field: 'payload.deep.x.y', message: 'keys must not contain "."' },
      { field: 'payload.deep.list[0].p.q', message: 'keys must not contain "."' },
    ]);
  });

  test('rejects numbers that MongoDB would not store as sent, and says to send big integers as strings', () => {
    const payload = JSON.parse('{"huge":1e400,"negative":-1e400,"big":12345678901234567890,"edge":9007199254740992,"list":[-9007199254740992]}');
    const beyond = 'is an integer beyond ±(2^53 − 1), which cannot be stored exactly; send a larger integer as a string';
    assert.deepEqual(errorsOf(validateActivity, { ...VALID_EVENT, payload }), [
      { field: 'payload.huge', message: 'must be a finite number' },
      { field: 'payload.negative', message: 'must be a finite number' },
      { field: 'payload.big', message: beyond },
      { field: 'payload.edge', message: beyond },
      { field: 'payload.list[0]', message: beyond },
    ]);
    const fine = { max: 9007199254740991, min: -9007199254740991, float: 123.456, tiny: 5e-324, negativeZero: -0 };
    assert.deepEqual(validateActivity({ ...VALID_EVENT, payload: fine }).payload, fine);
  });

  test('cuts a reported field path to 120 characters, so a 400 never echoes a long key', () => {
    const key = 'k'.repeat(15_000);
    const [error] = errorsOf(validateActivity, { ...VALID_EVENT, payload: { [`$${key}`]: 1 }, [key]: 1 });
    assert.equal(error!.field.length, 120);
    assert.ok(error!.field.endsWith('…'));
    const errors = errorsOf(validateActivity, { ...VALID_EVENT, payload: { [`$${'😀'.repeat(200)}`]: 1 } });
    assert.ok(errors[0]!.field.isWellFormed(), 'a cut never splits a surrogate pair');
    assert.ok(errors[0]!.field.length <= 120);
  });

  test('limits payload keys to 255 characters, counting code points, at any depth', () => {
    const fine = { ['😀'.repeat(255)]: 1, list: [{ ['k'.repeat(255)]: 2 }] };
    assert.deepEqual(validateActivity({ ...VALID_EVENT, payload: fine }).payload, fine);
    const errors = errorsOf(validateActivity, { ...VALID_EVENT, payload: { list: [{ ['k'.repeat(256)]: 2 }] } });
    assert.deepEqual(errors.map(({ message }) => message), ['keys must be at most 255 characters']);
    assert.ok(errors[0]!.field.startsWith('payload.list[0].kkk'));
  });

  test('counts every problem under a long key and names the first ones by their cut path', () => {
    const key = 'k'.repeat(200);
    const values = JSON.parse(`[${Array(5_000).fill('1e999').join(',')}]`);
    const error = (() => {
      try {
        validateActivity({ ...VALID_EVENT, payload: { [key]: values } });
      } catch (thrown) {
        return thrown as InvalidEvent;
      }
    })();
    assert.ok(error instanceof InvalidEvent);
    assert.match(error.message, /5000 problems/);
    assert.equal(error.errors?.length, MAX_REPORTED_ERRORS);
    assert.deepEqual(error.errors![1], { field: `payload.${key}`.slice(0, 119) + '…', message: 'must be a finite number' });
  });

  test('rejects a timestamp that is not a string', () => {
    assert.deepEqual(errorsOf(validateActivity, { ...VALID_EVENT, timestamp: 1698400800 }), [
      { field: 'timestamp', message: 'must be a string, not a number' },
    ]);
  });

  test('rejects a payload that is an array or a string', () => {
    assert.deepEqual(errorsOf(validateActivity, { ...VALID_EVENT, payload: [1] }), [{ field: 'payload', message: 'must be a JSON object, not an array' }]);
    assert.deepEqual(errorsOf(validateActivity, { ...VALID_EVENT, payload: 'x' }), [{ field: 'payload', message: 'must be a JSON object, not a string' }]);
  });

  test('accepts a payload nested 32 levels deep and rejects 33, counting arrays as levels', () => {
    assert.doesNotThrow(() => validateActivity({ ...VALID_EVENT, payload: nested(32) }));
    const tooDeep = errorsOf(validateActivity, { ...VALID_EVENT, payload: nested(33) });
    assert.equal(tooDeep.length, 1);
    assert.equal(tooDeep[0]!.message, 'is nested deeper than 32 levels');
    assert.equal(tooDeep[0]!.field, `payload${'.c'.repeat(32)}`);
    const arrays = errorsOf(validateActivity, { ...VALID_EVENT, payload: { list: JSON.parse('['.repeat(32) + ']'.repeat(32)) } });
    assert.equal(arrays[0]!.message, 'is nested deeper than 32 levels');
  });

  test('rejects keys starting with $ at any depth, naming their path, inside arrays too', () => {
    const payload = { $where: 1, ok: { deeper: [{ $gt: 2 }] }, price$: 3 };
    assert.deepEqual(errorsOf(validateActivity, { ...VALID_EVENT, payload }), [
      { field: 'payload.$where', message: 'keys must not start with "$"' },
      { field: 'payload.ok.deeper[0].$gt', message: 'keys must not start with "$"' },
    ]);
  });

  test(`reports at most ${MAX_REPORTED_ERRORS} problems while counting all of them`, () => {
    const payload = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`$k${i}`, i]));
    assert.throws(
      () => validateActivity({ ...VALID_EVENT, payload }),
      (error: unknown) => error instanceof InvalidEvent && error.errors?.length === MAX_REPORTED_ERRORS && /100 problems/.test(error.message),
    );
  });

  test('keeps a __proto__ key in the payload as plain data', () => {
    const body = JSON.parse(`{"userId":"u","eventType":"e","timestamp":"2023-10-27T10:00:00Z","payload":{"__proto__":{"polluted":true}}}`) as unknown;
    const event = validateActivity(body);
    assert.equal(JSON.stringify(event.payload), '{"__proto__":{"polluted":true}}');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  for (const [label, body] of [
    ['an array', []],
    ['null', null],
    ['a string', 'event'],
    ['a number', 42],
  ] as const) {
    test(`rejects a body that is ${label} with a detail saying what was expected`, () => {
      assert.throws(() => validateActivity(body), {
        name: 'InvalidEvent',
        message: `The body must be a JSON object with userId, eventType, timestamp and payload; got ${label}.`,
      });
    });
  }
});

describe('validateLegacyTrack', () => {
  const LEGACY = { user_id: 1, event_type: 'login', timestamp: '2023-10-27T10:00:00Z', metadata: { plan: 'pro' } };

  test('normalises snake_case into the event: integer user_id becomes a string', () => {
    assert.deepEqual(validateLegacyTrack(LEGACY), {
      userId: '1',
      eventType: 'login',
      timestamp: '2023-10-27T10:00:00Z',
      payload: { plan: 'pro' },
    });
  });

  test('accepts a string user_id and a missing metadata as an empty payload', () => {
    const { metadata: _, ...withoutMetadata } = LEGACY;
    assert.deepEqual(validateLegacyTrack({ ...withoutMetadata, user_id: 'u-9' }), {
      userId: 'u-9',
      eventType: 'login',
      timestamp: '2023-10-27T10:00:00Z',
      payload: {},
    });
  });

  test('reports problems under the snake_case names the client sent', () => {
    const errors = errorsOf(validateLegacyTrack, { user_id: 1.5, event_type: 'a\nb', timestamp: '2023-10-27T10:00:00', metadata: [], userId: 'x' });
    assert.deepEqual(
      errors.map(({ field, message }) => `${field}: ${message}`),
      [
        'userId: is not a known field (expected user_id, event_type, timestamp, metadata)',
        'user_id: must be a string, or an integer within ±(2^53 − 1)',
        'event_type: must not contain control, format or line-separator characters',
        'timestamp: must be an RFC 3339 date-time with a time zone, e.g. 2023-10-27T10:00:00Z',
        'metadata: must be a JSON object, not an array',
      ],
    );
  });

  test('applies the payload rules to metadata', () => {
    assert.deepEqual(errorsOf(validateLegacyTrack, { ...LEGACY, metadata: { $set: 1 } }), [
      { field: 'metadata.$set', message: 'keys must not start with "$"' },
    ]);
  });

  test('rejects an empty user_id string', () => {
    assert.deepEqual(errorsOf(validateLegacyTrack, { ...LEGACY, user_id: '' }), [{ field: 'user_id', message: 'must not be empty' }]);
  });
});
