import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { idFromContent, parseDelivery, type IncomingMessage } from '../src/services/activityProcessor.ts';
import { event } from './fakes.ts';

function message(body: unknown, properties: IncomingMessage['properties'] = {}): IncomingMessage {
  return { content: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), properties };
}

function reasonFor(body: unknown, properties: IncomingMessage['properties'] = { messageId: 'e-1' }): string | undefined {
  const result = parseDelivery(message(body, properties));
  return result.ok ? undefined : result.reason;
}

describe('parseDelivery accepts', () => {
  test('a valid event, taking the id from messageId and receivedAt from the header', () => {
    const result = parseDelivery(message(event('e-1'), { messageId: 'e-1', headers: { receivedAt: '2023-10-27T10:00:01.500Z' } }));
    assert.deepEqual(result, {
      ok: true,
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

  test('a message without receivedAt, or with an unreadable one, leaving the field out', () => {
    for (const headers of [undefined, {}, { receivedAt: 'yesterday' }, { receivedAt: 42 }]) {
      const result = parseDelivery(message(event('e-1'), { messageId: 'e-1', headers }));
      assert.ok(result.ok);
      assert.equal('receivedAt' in result.activity, false);
    }
  });

  test('a timestamp with an offset and fractional seconds, as the instant it names', () => {
    const result = parseDelivery(message(event('e-1', { timestamp: '2023-10-27T12:00:00.250+02:00' }), { messageId: 'e-1' }));
    assert.ok(result.ok);
    assert.equal(result.activity.timestamp.toISOString(), '2023-10-27T10:00:00.250Z');
  });

  test('a message without messageId, using the id in the body', () => {
    const result = parseDelivery(message(event('body-id')));
    assert.ok(result.ok);
    assert.equal(result.activity._id, 'body-id');
  });

  test('a message with no id at all, deriving the same UUID-shaped id from the same body every time', () => {
    const { id: _omitted, ...body } = event('unused');
    const first = parseDelivery(message(body));
    const again = parseDelivery(message(body));
    const other = parseDelivery(message({ ...body, userId: 'user-2' }));
    assert.ok(first.ok && again.ok && other.ok);
    assert.equal(first.activity.id, again.activity.id);
    assert.notEqual(first.activity.id, other.activity.id);
    assert.equal(first.activity.id, idFromContent(Buffer.from(JSON.stringify(body))));
    assert.match(first.activity.id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('parseDelivery rejects, saying why', () => {
  const cases: [string, unknown, string, IncomingMessage['properties']?][] = [
    ['a body that is not JSON', '{"userId": "u1",', 'body is not valid JSON'],
    ['an empty body', '', 'body is not valid JSON'],
    ['a JSON array', '[1, 2]', 'body is not a JSON object'],
    ['JSON null', 'null', 'body is not a JSON object'],
    ['a JSON string', '"hello"', 'body is not a JSON object'],
    ['a missing userId', { ...event('e-1'), userId: undefined }, 'userId must be a non-empty string'],
    ['a numeric userId', event('e-1', { userId: 42 }), 'userId must be a non-empty string'],
    ['a blank userId', event('e-1', { userId: '  ' }), 'userId must be a non-empty string'],
    ['a missing eventType', { ...event('e-1'), eventType: undefined }, 'eventType must be a non-empty string'],
    ['an empty eventType', event('e-1', { eventType: '' }), 'eventType must be a non-empty string'],
    ['a missing timestamp', { ...event('e-1'), timestamp: undefined }, 'timestamp must be an RFC 3339'],
    ['a numeric timestamp', event('e-1', { timestamp: 1698400800000 }), 'timestamp must be an RFC 3339'],
    ['a timestamp without a zone', event('e-1', { timestamp: '2023-10-27T10:00:00' }), 'timestamp must be an RFC 3339'],
    ['a date-only timestamp', event('e-1', { timestamp: '2023-10-27' }), 'timestamp must be an RFC 3339'],
    ['an impossible date', event('e-1', { timestamp: '2023-02-30T10:00:00Z' }), 'timestamp must be an RFC 3339'],
    ['an impossible hour', event('e-1', { timestamp: '2023-10-27T24:00:00Z' }), 'timestamp must be an RFC 3339'],
    ['a missing payload', { ...event('e-1'), payload: undefined }, 'payload must be a JSON object'],
    ['an array payload', event('e-1', { payload: [1] }), 'payload must be a JSON object'],
    ['a string payload', event('e-1', { payload: 'x' }), 'payload must be a JSON object'],
    ['a null payload', event('e-1', { payload: null }), 'payload must be a JSON object'],
    ['a numeric id in the body', event('e-1', { id: 7 }), 'id must be a string'],
    ['an id in the body that differs from messageId', event('e-2'), 'messageId does not match the id in the body'],
    ['an empty messageId', event('e-1'), 'messageId must be a string', { messageId: '' }],
    ['a messageId with control characters', event('e-1'), 'messageId must be a string', { messageId: 'e-1\n' }],
    ['an overlong messageId', event('e-1'), 'messageId must be a string', { messageId: 'x'.repeat(129) }],
  ];
  for (const [what, body, reason, properties] of cases) {
    test(what, () => {
      assert.match(reasonFor(body, properties) ?? 'accepted', new RegExp(`^${reason.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    });
  }
});
