// The Segment call -> stored event mapping (segment.ts), rule by rule, without HTTP.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError, InvalidEvent } from '../src/errors.ts';
import { CALL_TYPES, MESSAGE_ID_NAMESPACE, mapBatch, mapCall } from '../src/segment.ts';
import { uuidV5 } from '../src/uuidV5.ts';

const RECEIVED = new Date('2026-01-02T03:04:05.678Z');
const LIMITS = { maxCallBytes: 32_768, maxCalls: 500 };

/** A track call as @segment/analytics-node 3.1.0 writes it. */
const TRACK = {
  type: 'track',
  event: 'Order Completed',
  userId: 'u1',
  properties: { total: 10 },
  context: { library: { name: '@segment/analytics-node', version: '3.1.0' } },
  timestamp: '2026-01-02T03:04:00.123Z',
  messageId: 'node-next-1796150307493-de9bdd4d-1f7a-4f35-9f6e-2b0c1ad0f001',
  integrations: {},
} as const;

function refusal(run: () => unknown): AppError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof AppError);
    return error;
  }
  assert.fail('the call should have been refused');
}

const fieldsOf = (error: AppError) => error.errors?.map(({ field }) => field);

describe('uuidV5', () => {
  test('gives the RFC 9562 name-based UUID (the DNS namespace example www.example.com)', () => {
    assert.equal(uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'www.example.com'), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });
});

describe('mapBatch', () => {
  test('maps a track call: id from messageId, userId, the event name as eventType, its timestamp, the rest as payload', () => {
    const [event] = mapBatch({ batch: [TRACK], writeKey: 'k', sentAt: '2026-01-02T03:04:05Z' }, LIMITS, RECEIVED);
    assert.deepEqual(event, {
      id: uuidV5(MESSAGE_ID_NAMESPACE, TRACK.messageId),
      userId: 'u1',
      eventType: 'Order Completed',
      timestamp: '2026-01-02T03:04:00.123Z',
      payload: { type: 'track', properties: { total: 10 }, context: TRACK.context, messageId: TRACK.messageId, integrations: {} },
    });
  });

  test('derives the same id from the same messageId every time, and different ids from different ones', () => {
    const first = mapBatch({ batch: [TRACK, { ...TRACK, messageId: 'other' }] }, LIMITS, RECEIVED);
    const again = mapBatch({ batch: [TRACK] }, LIMITS, new Date(0));
    assert.equal(first[0]!.id, again[0]!.id);
    assert.notEqual(first[0]!.id, first[1]!.id);
    assert.match(first[0]!.id!, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  test('leaves the id to the publisher (a fresh one) for a call without messageId', () => {
    const { messageId: _none, ...call } = TRACK;
    const [event] = mapBatch({ batch: [call] }, LIMITS, RECEIVED);
    assert.equal(event!.id, undefined);
  });

  test('takes anonymousId when there is no userId (or it is null), keeping anonymousId in the payload', () => {
    const { userId: _none, ...anonymous } = TRACK;
    const events = mapBatch({ batch: [{ ...anonymous, anonymousId: 'anon-7' }, { ...TRACK, userId: null, anonymousId: 'anon-8' }] }, LIMITS, RECEIVED);
    assert.deepEqual(events.map((event) => [event.userId, event.payload.anonymousId]), [['anon-7', 'anon-7'], ['anon-8', 'anon-8']]);
  });

  test('writes an integer userId or anonymousId as its decimal string, as Segment does', () => {
    const { userId: _none, ...anonymous } = TRACK;
    const events = mapBatch({ batch: [{ ...TRACK, userId: 42 }, { ...anonymous, anonymousId: -7 }] }, LIMITS, RECEIVED);
    assert.deepEqual(events.map((event) => event.userId), ['42', '-7']);
    assert.deepEqual(fieldsOf(refusal(() => mapBatch({ batch: [{ ...TRACK, userId: 1.5 }] }, LIMITS, RECEIVED))), ['batch[0].userId']);
  });

  test('answers 400 naming the call when a call has neither userId nor anonymousId', () => {
    const { userId: _none, ...nobody } = TRACK;
    const error = refusal(() => mapBatch({ batch: [TRACK, TRACK, nobody] }, LIMITS, RECEIVED));
    assert.ok(error instanceof InvalidEvent);
    assert.deepEqual(error.errors, [{ field: 'batch[2]', message: 'has neither userId nor anonymousId; one is required' }]);
    assert.match(error.message, /Nothing of it was accepted/);
  });

  test('uses the call type as eventType for every call but track, keeping page and screen names in the payload', () => {
    const base = { userId: 'u1', timestamp: '2026-01-02T03:04:00Z' };
    const calls = [
      { ...base, type: 'identify', traits: { plan: 'pro' } },
      { ...base, type: 'page', name: 'Home', category: 'Docs', properties: { path: '/' } },
      { ...base, type: 'screen', name: 'Settings', properties: {} },
      { ...base, type: 'group', groupId: 'g1', traits: { seats: 3 } },
      { ...base, type: 'alias', previousId: 'anon-1' },
    ];
    const events = mapBatch({ batch: calls }, LIMITS, RECEIVED);
    assert.deepEqual(events.map((event) => event.eventType), ['identify', 'page', 'screen', 'group', 'alias']);
    assert.deepEqual(events[1]!.payload, { type: 'page', name: 'Home', category: 'Docs', properties: { path: '/' } });
    assert.equal(events[2]!.payload.name, 'Settings');
    assert.deepEqual(events[3]!.payload, { type: 'group', groupId: 'g1', traits: { seats: 3 } });
    assert.equal(events[4]!.payload.previousId, 'anon-1');
  });

  test('takes timestamp, else originalTimestamp (which stays in the payload), else the receive time', () => {
    const { timestamp: _none, ...untimed } = TRACK;
    const events = mapBatch({ batch: [{ ...TRACK, originalTimestamp: '2020-01-01T00:00:00Z' }, { ...untimed, originalTimestamp: '2026-01-02T03:00:00.000Z' }, untimed] }, LIMITS, RECEIVED);
    assert.deepEqual(events.map((event) => event.timestamp), ['2026-01-02T03:04:00.123Z', '2026-01-02T03:00:00.000Z', RECEIVED.toISOString()]);
    assert.equal(events[1]!.payload.originalTimestamp, '2026-01-02T03:00:00.000Z');
    assert.equal('timestamp' in events[0]!.payload, false);
  });

  test('holds timestamps to RFC 3339, naming the field the call used', () => {
    const { timestamp: _none, ...untimed } = TRACK;
    const error = refusal(() => mapBatch({ batch: [{ ...TRACK, timestamp: 'yesterday' }, { ...untimed, originalTimestamp: '2026-02-30T00:00:00Z' }] }, LIMITS, RECEIVED));
    assert.deepEqual(fieldsOf(error), ['batch[0].timestamp', 'batch[1].originalTimestamp']);
  });

  test('refuses what the contract refuses, with the path in the Segment call, rather than altering it', () => {
    const error = refusal(() =>
      mapBatch({ batch: [{ ...TRACK, properties: { a: { 'b.c': 1 } } }, { type: 'identify', userId: 'u', traits: { $email: 'x' } }, { ...TRACK, event: '' }] }, LIMITS, RECEIVED),
    );
    assert.deepEqual(error.errors, [
      { field: 'batch[0].properties.a.b.c', message: 'keys must not contain "."' },
      { field: 'batch[1].traits.$email', message: 'keys must not start with "$"' },
      { field: 'batch[2].event', message: 'must not be empty' },
    ]);
  });

  test('refuses a call without a known type, and an item that is not a call', () => {
    const error = refusal(() => mapBatch({ batch: [{ ...TRACK, type: 'click' }, { ...TRACK, type: undefined }, 'track'] }, LIMITS, RECEIVED));
    assert.deepEqual(fieldsOf(error), ['batch[0].type', 'batch[1].type', 'batch[2]']);
  });

  test('accepts writeKey, sentAt and timestamp beside the batch, refuses other fields there, and never stores a writeKey', () => {
    const [event] = mapBatch({ batch: [{ ...TRACK, writeKey: 'secret-in-call' }], writeKey: 'k', sentAt: 'x', timestamp: 'y' }, LIMITS, RECEIVED);
    assert.equal(JSON.stringify(event).includes('secret-in-call'), false);
    assert.deepEqual(fieldsOf(refusal(() => mapBatch({ batch: [TRACK], context: {} }, LIMITS, RECEIVED))), ['context']);
  });

  test('answers 413 naming the first call over the per-call limit, and 400 past the call count', () => {
    const big = { ...TRACK, properties: { text: 'x'.repeat(400) } };
    const tooLarge = refusal(() => mapBatch({ batch: [TRACK, big, big] }, { maxCallBytes: 400, maxCalls: 500 }, RECEIVED));
    assert.equal(tooLarge.status, 413);
    assert.equal(tooLarge.code, 'body-too-large');
    assert.match(tooLarge.message, /^batch\[1\] must be at most 400 bytes/);
    const tooMany = refusal(() => mapBatch({ batch: [TRACK, TRACK, TRACK] }, { maxCallBytes: 32_768, maxCalls: 2 }, RECEIVED));
    assert.equal(tooMany.status, 400);
    assert.match(tooMany.message, /holds 3 calls; send at most 2/);
  });

  test('refuses bodies that are not {"batch": [...]} and an empty batch', () => {
    assert.match(refusal(() => mapBatch([TRACK], LIMITS, RECEIVED)).message, /got an array/);
    assert.match(refusal(() => mapBatch({ batch: [] }, LIMITS, RECEIVED)).message, /empty/);
  });

  test('keeps a __proto__ key of a call as a plain payload field', () => {
    const [event] = mapBatch(JSON.parse(`{"batch":[${JSON.stringify(TRACK).slice(0, -1)},"__proto__":{"x":1}}]}`), LIMITS, RECEIVED);
    assert.deepEqual(Object.getOwnPropertyDescriptor(event!.payload, '__proto__')?.value, { x: 1 });
    assert.equal(Object.getPrototypeOf(event!.payload), Object.prototype);
  });
});

describe('mapCall', () => {
  test('maps each call type posted alone, the type taken from the route', () => {
    for (const type of CALL_TYPES) {
      const event = mapCall({ userId: 'u1', event: 'Signed Up', messageId: `m-${type}` }, type, RECEIVED);
      assert.equal(event.eventType, type === 'track' ? 'Signed Up' : type);
      assert.equal(event.payload.type, type);
      assert.equal(event.id, uuidV5(MESSAGE_ID_NAMESPACE, `m-${type}`));
      assert.equal(event.timestamp, RECEIVED.toISOString());
    }
  });

  test('names problems from the root of the call, and refuses a type other than the route\'s', () => {
    const error = refusal(() => mapCall({ type: 'identify', properties: { 'a.b': 1 }, event: 'x' }, 'track', RECEIVED));
    assert.deepEqual(error.errors, [
      { field: 'type', message: 'must be "track" on /v1/track, or left out' },
      { field: 'userId', message: 'is required, or anonymousId' },
      { field: 'properties.a.b', message: 'keys must not contain "."' },
    ]);
    assert.match(error.message, /^The call has 3 problems/);
  });

  test('refuses a body that is not an object', () => {
    assert.match(refusal(() => mapCall(null, 'page', RECEIVED)).message, /a Segment page call\); got null/);
  });
});
