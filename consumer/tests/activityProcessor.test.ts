import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { idFromContent, parseDelivery, type IncomingMessage } from '../src/services/activityProcessor.ts';
import { MAX_REASON_LENGTH, type Rejection, type RejectionCause } from '../src/services/verdict.ts';
import { event } from './fakes.ts';

function message(body: unknown, properties: IncomingMessage['properties'] = {}): IncomingMessage {
  const content = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return { content, properties };
}

/** The rejection `body` gets, or undefined when it is accepted. */
function rejectionOf(body: unknown, properties: IncomingMessage['properties'] = { messageId: 'e-1' }): Rejection | undefined {
  const result = parseDelivery(message(body, properties));
  return result.verdict === 'rejected' ? result : undefined;
}

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('parseDelivery accepts', () => {
  test('a valid event, taking the id from messageId and receivedAt from the body', () => {
    const result = parseDelivery(message(event('e-1', { receivedAt: '2023-10-27T10:00:01.500Z' }), { messageId: 'e-1' }));
    assert.deepEqual(result, {
      verdict: 'activity',
      activity: {
        _id: 'e-1',
        id: 'e-1',
        userId: 'user-1',
        eventType: 'page_view',
        timestamp: new Date('2023-10-27T10:00:00Z'),
        payload: { page: '/home' },
        receivedAt: new Date('2023-10-27T10:00:01.500Z'),
      },
    });
  });

  test('the source (a write key name) carried through to the document, and left out when the message has none', () => {
    const result = parseDelivery(message(event('e-1', { source: 'web-shop' }), { messageId: 'e-1' }));
    assert.ok(result.verdict === 'activity');
    assert.equal(result.activity.source, 'web-shop');
    const without = parseDelivery(message(event('e-1'), { messageId: 'e-1' }));
    assert.ok(without.verdict === 'activity');
    assert.equal('source' in without.activity, false);
  });

  test('receivedAt from the header of a message queued before it moved into the body, the body winning', () => {
    const queuedBefore = parseDelivery(message(event('e-1'), { messageId: 'e-1', headers: { receivedAt: '2023-10-27T10:00:01.500Z' } }));
    assert.ok(queuedBefore.verdict === 'activity');
    assert.deepEqual(queuedBefore.activity.receivedAt, new Date('2023-10-27T10:00:01.500Z'));
    const both = parseDelivery(message(event('e-1', { receivedAt: '2023-10-27T10:00:02.000Z' }), { messageId: 'e-1', headers: { receivedAt: '2023-10-27T10:00:01.500Z' } }));
    assert.ok(both.verdict === 'activity');
    assert.deepEqual(both.activity.receivedAt, new Date('2023-10-27T10:00:02.000Z'));
  });

  test('a message without receivedAt, or with an unreadable one, leaving the field out', () => {
    for (const headers of [undefined, {}, { receivedAt: 'yesterday' }, { receivedAt: 42 }]) {
      const result = parseDelivery(message(event('e-1'), { messageId: 'e-1', headers }));
      assert.ok(result.verdict === 'activity');
      assert.equal('receivedAt' in result.activity, false);
    }
    for (const receivedAt of ['yesterday', 42, null]) {
      const result = parseDelivery(message(event('e-1', { receivedAt }), { messageId: 'e-1' }));
      assert.ok(result.verdict === 'activity');
      assert.equal('receivedAt' in result.activity, false);
    }
  });

  test('a timestamp with an offset and fractional seconds, as the instant it names', () => {
    const result = parseDelivery(message(event('e-1', { timestamp: '2023-10-27T12:00:00.250+02:00' }), { messageId: 'e-1' }));
    assert.ok(result.verdict === 'activity');
    assert.equal(result.activity.timestamp.toISOString(), '2023-10-27T10:00:00.250Z');
  });

  test('a message without messageId, using the id in the body', () => {
    const result = parseDelivery(message(event('body-id')));
    assert.ok(result.verdict === 'activity');
    assert.equal(result.activity._id, 'body-id');
  });

  test('a message with no id at all, deriving the same UUID-shaped id from the same body every time', () => {
    const { id: _omitted, ...body } = event('unused');
    const first = parseDelivery(message(body));
    const again = parseDelivery(message(body));
    const other = parseDelivery(message({ ...body, userId: 'user-2' }));
    assert.ok(first.verdict === 'activity' && again.verdict === 'activity' && other.verdict === 'activity');
    assert.equal(first.activity.id, again.activity.id);
    assert.notEqual(first.activity.id, other.activity.id);
    assert.equal(first.activity.id, idFromContent(Buffer.from(JSON.stringify(body))));
    assert.match(first.activity.id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('parseDelivery rejects, saying why', () => {
  const cases: [string, unknown, RejectionCause, string, IncomingMessage['properties']?][] = [
    ['a body that is not JSON', '{"userId": "u1",', 'unparseable', 'The body is not valid JSON: '],
    ['an empty body', '', 'unparseable', 'The body is empty'],
    ['a JSON array', '[1, 2]', 'unparseable', 'The body is not a JSON object, but an array'],
    ['JSON null', 'null', 'unparseable', 'The body is not a JSON object, but null'],
    ['a JSON string', '"hello"', 'unparseable', 'The body is not a JSON object, but a string'],
    ['a missing userId', { ...event('e-1'), userId: undefined }, 'contract', 'userId is required'],
    ['a numeric userId', event('e-1', { userId: 42 }), 'contract', 'userId must be a string, not a number'],
    ['a missing eventType', { ...event('e-1'), eventType: undefined }, 'contract', 'eventType is required'],
    ['an empty eventType', event('e-1', { eventType: '' }), 'contract', 'eventType must not be empty'],
    ['an overlong eventType', event('e-1', { eventType: 'e'.repeat(256) }), 'contract', 'eventType must be at most 255 characters'],
    ['a missing timestamp', { ...event('e-1'), timestamp: undefined }, 'contract', 'timestamp is required'],
    ['a numeric timestamp', event('e-1', { timestamp: 1698400800000 }), 'contract', 'timestamp must be a string, not a number'],
    ['a timestamp without a zone', event('e-1', { timestamp: '2023-10-27T10:00:00' }), 'contract', 'timestamp must be an RFC 3339'],
    ['a date-only timestamp', event('e-1', { timestamp: '2023-10-27' }), 'contract', 'timestamp must be an RFC 3339'],
    ['an impossible date', event('e-1', { timestamp: '2023-02-30T10:00:00Z' }), 'contract', 'timestamp has no such day in that month'],
    ['an impossible hour', event('e-1', { timestamp: '2023-10-27T24:00:00Z' }), 'contract', 'timestamp has no such time of day'],
    ['a missing payload', { ...event('e-1'), payload: undefined }, 'contract', 'payload is required'],
    ['an array payload', event('e-1', { payload: [1] }), 'contract', 'payload must be a JSON object, not an array'],
    ['a string payload', event('e-1', { payload: 'x' }), 'contract', 'payload must be a JSON object, not a string'],
    ['a null payload', event('e-1', { payload: null }), 'contract', 'payload must be a JSON object, not null'],
    ['a numeric id in the body', event('e-1', { id: 7 }), 'contract', 'id must be a string'],
    ['a numeric source', event('e-1', { source: 7 }), 'contract', 'source must be a string, not a number'],
    ['a blank source', event('e-1', { source: ' ' }), 'contract', 'source must not be blank'],
    ['an id in the body that differs from messageId', event('e-2'), 'contract', 'messageId does not match the id in the body'],
    ['an empty messageId', event('e-1'), 'contract', 'messageId must be a string', { messageId: '' }],
    ['a messageId with control characters', event('e-1'), 'contract', 'messageId must be a string', { messageId: 'e-1\n' }],
    ['an overlong messageId', event('e-1'), 'contract', 'messageId must be a string', { messageId: 'x'.repeat(129) }],
  ];
  for (const [what, body, cause, reason, properties] of cases) {
    test(`${what}, as ${cause}`, () => {
      const rejected = rejectionOf(body, properties);
      assert.equal(rejected?.cause, cause);
      assert.match(rejected.reason, new RegExp(`^${escaped(reason)}`));
    });
  }

  test('several problems at once, naming the first three and counting the rest', () => {
    const rejected = rejectionOf(event('e-1', { userId: '', eventType: 1, timestamp: 'now', payload: { 'a.b': 1, $c: 2 } }));
    assert.equal(rejected?.cause, 'contract');
    assert.equal(rejected.reason, 'userId must not be empty; eventType must be a string, not a number; timestamp must be an RFC 3339 date-time with a time zone, e.g. 2023-10-27T10:00:00Z (and 2 more)');
  });
});

// A message put on the queue by anything but the API is held to the API's contract: whatever
// MongoDB would refuse, or the driver would silently change, is rejected before the write.
describe('parseDelivery applies the event contract to a message put straight on the queue', () => {
  const lone = JSON.parse('"\\ud800"') as string;
  const withPayload = (payload: unknown) => event('e-1', { payload });
  const cases: [string, unknown, string][] = [
    ['a NUL in a payload key', withPayload({ 'a\u0000b': 1 }), 'payload.a\u0000b keys must not contain NUL (\\u0000)'],
    ['a "." in a nested payload key', withPayload({ a: { 'b.c': 1 } }), 'payload.a.b.c keys must not contain "."'],
    ['a key starting with "$" deep inside the payload', withPayload({ a: { b: [{ c: { $where: 'sleep(1)' } }] } }), 'payload.a.b[0].c.$where keys must not start with "$"'],
    ['a lone surrogate in a payload string', withPayload({ list: ['ok', `x${lone}`] }), 'payload.list[1] must be well-formed Unicode (no lone surrogates)'],
    ['a lone surrogate in a payload key', withPayload({ nested: { [`k${lone}`]: true } }), `payload.nested.k${lone} keys must be well-formed Unicode (no lone surrogates)`],
    ['a lone surrogate in userId', event('e-1', { userId: `u${lone}` }), 'userId must be well-formed Unicode (no lone surrogates)'],
    ['a userId of spaces', event('e-1', { userId: '   ' }), 'userId must not be blank'],
    ['a userId of one no-break space', event('e-1', { userId: '\u00a0' }), 'userId must not be blank'],
    ['a control character in eventType', event('e-1', { eventType: 'click\u0007' }), 'eventType must not contain control, format or line-separator characters'],
    ['a format character (zero-width space) in eventType', event('e-1', { eventType: 'cli\u200bck' }), 'eventType must not contain control, format or line-separator characters'],
    ['a line separator in eventType', event('e-1', { eventType: 'click\u2028' }), 'eventType must not contain control, format or line-separator characters'],
    ['a payload nested deeper than 32 levels', withPayload(nested(33)), `payload${'.a'.repeat(32)} is nested deeper than 32 levels`],
  ];
  for (const [what, body, reason] of cases) {
    test(`rejects ${what} as a contract violation naming the field`, () => {
      assert.deepEqual(rejectionOf(body), { verdict: 'rejected', cause: 'contract', reason });
    });
  }

  // JSON.stringify cannot write these numbers, so the bodies are written by hand.
  const valid = JSON.stringify(event('e-1')).replace('{"page":"/home"}', 'NUMBER');
  test('rejects 1e400, which JSON.parse reads as Infinity and BSON would store as a double', () => {
    assert.deepEqual(rejectionOf(valid.replace('NUMBER', '{"big":1e400}')), { verdict: 'rejected', cause: 'contract', reason: 'payload.big must be a finite number' });
  });

  test('rejects 12345678901234567890, an integer that cannot be stored exactly', () => {
    const rejected = rejectionOf(valid.replace('NUMBER', '{"n":{"count":12345678901234567890}}'));
    assert.equal(rejected?.cause, 'contract');
    assert.match(rejected.reason, /^payload\.n\.count is an integer beyond ±\(2\^53 − 1\)/);
  });

  test('accepts the largest exact integers and nested arrays, which the contract allows', () => {
    const body = valid.replace('NUMBER', '{"max":9007199254740991,"min":-9007199254740991,"grid":[[1,2],[3]]}');
    assert.equal(parseDelivery(message(body, { messageId: 'e-1' })).verdict, 'activity');
  });

  const good = Buffer.from(JSON.stringify(event('e-1')));
  const bytes: [string, Buffer][] = [
    ['a byte that never occurs in UTF-8 (0xFF)', Buffer.concat([good.subarray(0, 20), Buffer.from([0xff]), good.subarray(20)])],
    ['an overlong encoding of "/" (0xC0 0xAF)', Buffer.concat([good.subarray(0, good.indexOf('/home')), Buffer.from([0xc0, 0xaf]), good.subarray(good.indexOf('/home') + 1)])],
    ['a UTF-8-encoded lone surrogate (0xED 0xA0 0x80)', Buffer.concat([good.subarray(0, 20), Buffer.from([0xed, 0xa0, 0x80]), good.subarray(20)])],
    ['a truncated multi-byte sequence at the end', Buffer.concat([good, Buffer.from([0xe2, 0x82])])],
  ];
  for (const [what, body] of bytes) {
    test(`rejects a body with ${what} as unparseable, rather than storing U+FFFD`, () => {
      assert.deepEqual(rejectionOf(body), { verdict: 'rejected', cause: 'unparseable', reason: 'The body is not valid UTF-8' });
    });
  }

  test(`keeps a reason within ${MAX_REASON_LENGTH} characters, and well-formed, even for 15,000-character keys`, () => {
    const key = (bad: string) => `${'😀'.repeat(7_500)}${bad}`;
    const rejected = rejectionOf(withPayload({ [key('.')]: 1, [key('\u0000')]: 2, [key('x')]: { $gt: 3 }, [`$${key('')}`]: 4 }));
    assert.equal(rejected?.cause, 'contract');
    assert.ok(rejected.reason.length <= MAX_REASON_LENGTH, `reason is ${rejected.reason.length} characters`);
    assert.ok(rejected.reason.isWellFormed(), 'never cut inside a surrogate pair');
    assert.match(rejected.reason, /^payload\.😀+… keys must not contain "\."; payload\.😀+… keys must not contain NUL/u);
  });

  test(`keeps the reason for unparseable JSON within ${MAX_REASON_LENGTH} characters when the parser quotes a 15,000-character key`, () => {
    const rejected = rejectionOf(`{"${'k'.repeat(15_000)}" 1}`);
    assert.equal(rejected?.cause, 'unparseable');
    assert.match(rejected.reason, /^The body is not valid JSON: /);
    assert.ok(rejected.reason.length <= MAX_REASON_LENGTH, `reason is ${rejected.reason.length} characters`);
  });
});

function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let level = 1; level < depth; level++) value = { a: value };
  return value;
}
