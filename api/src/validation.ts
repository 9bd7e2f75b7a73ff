// Hand-written validation of posted events: each route's own shape (field names, unknown fields,
// the optional id), then the event contract the consumer applies too (common/src/eventContract.ts).
// Every problem is collected, so a client fixes its request in one round trip. Parsed JSON is read,
// never copied key by key: keys such as `__proto__` stay plain own properties of the payload and
// never reach Object.prototype.
import type { ActivityEvent } from '@event-tracker/shared';
import { FIELD_NAMES, Problems, checkEventFields, describe, isObject, isUuid } from '@event-tracker/common/eventContract.ts';
import type { FieldNames, JsonObject } from '@event-tracker/common/eventContract.ts';
import { InvalidEvent } from './errors.ts';

const ACTIVITY_FIELDS = ['id', 'userId', 'eventType', 'timestamp', 'payload'];
const LEGACY_FIELDS = ['user_id', 'event_type', 'timestamp', 'metadata'];
const LEGACY_NAMES: FieldNames = { userId: 'user_id', eventType: 'event_type', timestamp: 'timestamp', payload: 'metadata' };

/** `POST /api/v1/activities`: `{id?, userId, eventType, timestamp, payload}`. */
export function validateActivity(body: unknown): ActivityEvent {
  const problems = new Problems();
  const event = checkActivity(problems, requireObject(body), '');
  return settle(problems, event);
}

/**
 * `POST /api/v1/activities/batch`: `{batch: [event, ...]}`, each event as for a single one. All or
 * nothing: one bad event refuses the batch, with every problem named `batch[<i>].<field>`.
 */
export function validateBatch(body: unknown, maxEvents: number): ActivityEvent[] {
  const object = isObject(body) ? body : undefined;
  const batch = object?.batch;
  if (!Array.isArray(batch)) throw new InvalidEvent(`The body must be a JSON object {"batch": [event, ...]}; got ${object === undefined ? describe(body) : `"batch" as ${describe(batch)}`}.`);
  if (batch.length === 0) throw new InvalidEvent('The batch is empty; send at least one event.');
  if (batch.length > maxEvents) throw new InvalidEvent(`The batch holds ${batch.length} events; send at most ${maxEvents} per request.`);
  const problems = new Problems();
  rejectUnknownFields(problems, object!, ['batch'], '');
  const events = batch.map((item, index) => {
    const prefix = `batch[${index}].`;
    if (isObject(item)) return checkActivity(problems, item, prefix);
    problems.add(`batch[${index}]`, `must be an event object, not ${describe(item)}`);
    return undefined;
  });
  if (!problems.empty) throw new InvalidEvent(`The batch has ${problems.summary()}; see "errors". Nothing of it was accepted.`, problems.list);
  return events as ActivityEvent[];
}

/** One native event; its fields are reported as `<prefix><field>`. */
function checkActivity(problems: Problems, object: JsonObject, prefix: string): ActivityEvent {
  rejectUnknownFields(problems, object, ACTIVITY_FIELDS, prefix);
  let id: string | undefined;
  if (object.id !== undefined) {
    // A UUID is case-insensitive; lower case makes one idempotency key one messageId.
    if (isUuid(object.id)) id = object.id.toLowerCase();
    else problems.add(`${prefix}id`, 'must be a UUID such as 123e4567-e89b-12d3-a456-426614174000');
  }
  const names = prefix === '' ? FIELD_NAMES : { userId: `${prefix}userId`, eventType: `${prefix}eventType`, timestamp: `${prefix}timestamp`, payload: `${prefix}payload` };
  const fields = checkEventFields(problems, object, names);
  return id === undefined ? fields : { id, ...fields };
}

/**
 * `POST /api/v1/events/track`, the older snake_case contract: `user_id` (integer or string) becomes
 * the string `userId`, `event_type` becomes `eventType`, and the optional `metadata` becomes
 * `payload` ({} when absent). Problems are reported under the names the client sent.
 */
export function validateLegacyTrack(body: unknown): ActivityEvent {
  const object = requireObject(body);
  const problems = new Problems();
  rejectUnknownFields(problems, object, LEGACY_FIELDS);
  const userId = typeof object.user_id === 'number' ? legacyUserId(problems, object.user_id) : object.user_id;
  const fields = checkEventFields(problems, { userId, eventType: object.event_type, timestamp: object.timestamp, payload: object.metadata ?? {} }, LEGACY_NAMES);
  return settle(problems, fields);
}

/** A numeric user_id is kept as its decimal string; only an exactly representable integer is one. */
function legacyUserId(problems: Problems, value: number): string {
  if (!Number.isSafeInteger(value)) problems.add('user_id', 'must be a string, or an integer within ±(2^53 − 1)');
  return String(value);
}

function requireObject(body: unknown): JsonObject {
  if (isObject(body)) return body;
  throw new InvalidEvent(`The body must be a JSON object with userId, eventType, timestamp and payload; got ${describe(body)}.`);
}

function settle(problems: Problems, event: ActivityEvent): ActivityEvent {
  if (problems.empty) return event;
  throw new InvalidEvent(`The event has ${problems.summary()}; see "errors".`, problems.list);
}

function rejectUnknownFields(problems: Problems, object: JsonObject, known: readonly string[], prefix = ''): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) problems.add(`${prefix}${key}`, `is not a known field (expected ${known.join(', ')})`);
  }
}
