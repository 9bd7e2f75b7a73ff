// The API and the consumer can never disagree about an event. A seeded generator writes event JSON
// full of what the event contract must catch (lone surrogates, NUL, "." and "$" keys, 1e400, integers
// past 2^53, blank and invisible ids, deep nesting) and of what it must let through unchanged (-0,
// __proto__ keys, emoji, nested arrays, control characters in values). For every case:
// - the API's validator accepts it exactly when the consumer's parser accepts the same event put
//   straight on the queue;
// - when accepted, the parser accepts the message the API would publish, the driver's BSON encoder
//   takes the document, and it decodes back deep-equal to what was sent.
// Replay a failure with CONTRACT_SEED=<seed> (and CONTRACT_CASES=<n>).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BSON } from 'mongodb';
import { InvalidEvent } from '../../api/src/errors.ts';
import { encodeMessage } from '../../api/src/publisher.ts';
import { validateActivity } from '../../api/src/validation.ts';
import { parseDelivery, toDocument } from '../../consumer/src/services/activityProcessor.ts';
import { prng } from '../support/prng.ts';

const CASES = Number(process.env.CONTRACT_CASES ?? 5000);
const SEED = Number(process.env.CONTRACT_SEED ?? 20261201);

/** JSON string literals, as written on the wire: `\ud800` is a lone surrogate once parsed. */
const STRINGS = [
  '"user-1"', '"page_view"', '"😀 emoji"', '"ключ"', '"a\\u0000b"', '"\\ud800"', '"x\\udc00y"', '"\\ud83d\\ude00"', '"tab\\there"',
  '"line\\u2028sep"', '"zero\\u200bwidth"', '"   "', '"\\u00a0"', '"\\u3000"', '""', '" padded "', '"new\\nline"', '"\\u0085"', '"\\ufeff"',
];
const KEYS = [
  '"k"', '"page"', '"__proto__"', '"constructor"', '""', '"a.b"', '"$where"', '"price$"', '"a\\u0000b"', '"\\ud800"', '"😀"', '"_id"', '"x\\u0001"', '"."',
];
const NUMBERS = [
  '0', '-0', '1', '-1', '1.5', '123.456', '5e-324', '9007199254740991', '-9007199254740991', '9007199254740992', '12345678901234567890',
  '1e400', '-1e400', '1e15', '2.5e300', '1e-7',
];
const TIMESTAMPS = ['"2023-10-27T10:00:00Z"', '"2023-10-27T12:00:00.250+02:00"', '"2023-02-30T10:00:00Z"', '"2023-10-27T10:00:00"', '"2016-12-31T23:59:60Z"'];
const ID_TEXTS = [...STRINGS.slice(0, 4), '"user-\\ud800"', '"e\\u200b"', `"${'u'.repeat(256)}"`, `"${'😀'.repeat(255)}"`, '42', 'null'];

function generator(random: () => number) {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const chance = (p: number) => random() < p;

  function value(depth: number): string {
    const roll = random();
    if (depth >= 34 || roll < 0.3) return pick(STRINGS);
    if (roll < 0.55) return pick(NUMBERS);
    if (roll < 0.6) return pick(['true', 'false', 'null']);
    if (roll < 0.8) return object(depth + 1);
    return `[${Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1)).join(',')}]`;
  }

  function object(depth: number): string {
    // Mostly plain keys, so that a fair share of events pass; now and then a hostile one.
    const key = () => (chance(0.12) ? pick(KEYS) : `"k${Math.floor(random() * 1000)}"`);
    // Sometimes a deep chain, to cross the 32-level limit.
    if (chance(0.03)) return `{"deep":${deepChain(26 + Math.floor(random() * 8))}}`;
    return `{${Array.from({ length: Math.floor(random() * 4) }, () => `${key()}:${value(depth)}`).join(',')}}`;
  }

  /** The event's fields as JSON text, without `id`: `"userId":...,"eventType":...,...`. */
  return function eventFields(): string {
    const userId = chance(0.8) ? '"user-1"' : pick(ID_TEXTS);
    const eventType = chance(0.8) ? '"page_view"' : pick(ID_TEXTS);
    const timestamp = chance(0.9) ? TIMESTAMPS[0]! : pick(TIMESTAMPS);
    return `"userId":${userId},"eventType":${eventType},"timestamp":${timestamp},"payload":${object(1)}`;
  };
}

/** A balanced deep chain of `levels` objects around 1. */
function deepChain(levels: number): string {
  return `${'{"d":'.repeat(levels)}1${'}'.repeat(levels)}`;
}

/**
 * The one change the API makes, documented in API_DOCS.md: it publishes the event re-encoded with
 * JSON.stringify, which writes -0 as 0 (JSON and MongoDB compare the two equal).
 */
function zeroForNegativeZero(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (Array.isArray(value)) return value.map(zeroForNegativeZero);
  if (typeof value === 'object' && value !== null) {
    const copy: Record<string, unknown> = {};
    // defineProperty, so a "__proto__" key stays an own property as JSON.parse made it.
    for (const [key, child] of Object.entries(value)) Object.defineProperty(copy, key, { value: zeroForNegativeZero(child), enumerable: true, writable: true, configurable: true });
    return copy;
  }
  return value;
}

function accepts(body: unknown): boolean {
  try {
    validateActivity(body);
    return true;
  } catch (error) {
    if (error instanceof InvalidEvent) return false;
    throw error;
  }
}

test(`${CASES} seeded events: the validator and the parser agree, and what is accepted is stored as sent (CONTRACT_SEED=${SEED})`, () => {
  const random = prng(SEED);
  const eventFields = generator(random);
  let accepted = 0;
  for (let i = 0; i < CASES; i++) {
    // Every 50th case is a payload exactly at or past the 32-level depth limit.
    const fields = i % 50 === 0 ? `"userId":"u","eventType":"e","timestamp":"2023-10-27T10:00:00Z","payload":${deepChain(31 + (i % 100 === 0 ? 1 : 0))}` : eventFields();
    const where = `case ${i} (CONTRACT_SEED=${SEED}): {${fields.slice(0, 300)}}`;
    let body: unknown;
    try {
      body = JSON.parse(`{${fields}}`);
    } catch {
      continue; // the generator wrote invalid JSON: nothing to compare
    }
    const id = randomUUID();
    // The same event put straight on the queue, byte for byte as generated (1e400 and all).
    const direct = parseDelivery({ content: Buffer.from(`{"id":"${id}",${fields}}`), properties: { messageId: id } });
    const apiAccepts = accepts(body);
    assert.equal(direct.verdict === 'activity', apiAccepts, `${where}: validator ${apiAccepts ? 'accepts' : 'refuses'}, parser says ${direct.verdict === 'rejected' ? direct.reason : 'activity'}`);
    if (!apiAccepts) continue;
    accepted += 1;

    // What the API publishes for it, as the controller builds it.
    const event = validateActivity(body);
    const sent = { id, userId: event.userId, eventType: event.eventType, timestamp: event.timestamp, payload: event.payload };
    const receivedAt = new Date('2026-12-01T00:00:00.000Z');
    const { content, properties } = encodeMessage(sent, receivedAt);
    const parsed = parseDelivery({ content, properties });
    assert.equal(parsed.verdict, 'activity', `${where}: the consumer refuses what the API published: ${parsed.verdict === 'rejected' ? parsed.reason : ''}`);
    if (parsed.verdict !== 'activity') continue;

    const document = toDocument(parsed.activity, receivedAt);
    const decoded = BSON.deserialize(BSON.serialize(document));
    const expected = zeroForNegativeZero(JSON.parse(`{${fields}}`).payload);
    assert.deepEqual(decoded.payload, expected, `${where}: the payload does not come back from BSON as sent`);
    assert.equal(decoded.userId, event.userId, where);
    assert.equal(decoded.eventType, event.eventType, where);
    assert.equal((decoded.timestamp as Date).getTime(), Date.parse(event.timestamp), where);
  }
  // A generator that accepts nearly everything, or nearly nothing, would test little.
  assert.ok(accepted > CASES * 0.2 && accepted < CASES * 0.8, `accepted ${accepted} of ${CASES}: the generator needs rebalancing`);
});
