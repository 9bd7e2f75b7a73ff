import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FieldError } from '@event-tracker/shared';
import { InvalidEvent } from '../src/errors.ts';
import { MAX_REPORTED_ERRORS, validateActivity, validateLegacyTrack } from '../src/validation.ts';
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
  for (let level = 1; level < depth; level++) value = { child: value };
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

  test('rejects control characters in eventType', () => {
    for (const eventType of ['login\n', 'a\u0000b', 'tab\there', 'del\u007f', 'c1\u0085']) {
      assert.deepEqual(errorsOf(validateActivity, { ...VALID_EVENT, eventType }), [
        { field: 'eventType', message: 'must not contain control characters' },
      ]);
    }
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
    assert.equal(tooDeep[0]!.field, `payload${'.child'.repeat(32)}`);
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
        'user_id: must be an integer or a string',
        'event_type: must not contain control characters',
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
