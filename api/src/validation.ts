// Hand-written validation of posted events. Every problem is collected, so a client fixes its
// request in one round trip. Parsed JSON is read, never copied key by key: keys such as
// `__proto__` stay plain own properties of the payload and never reach Object.prototype.
import type { ActivityEvent, FieldError } from '@event-tracker/shared';
import { InvalidEvent } from './errors.ts';
import { timestampProblem } from './timestamp.ts';

export const MAX_TEXT_LENGTH = 255;
export const MAX_PAYLOAD_DEPTH = 32;
/** Enough to fix a request by; a payload full of `$` keys should not make a huge answer. */
export const MAX_REPORTED_ERRORS = 20;

const ACTIVITY_FIELDS = ['id', 'userId', 'eventType', 'timestamp', 'payload'];
const LEGACY_FIELDS = ['user_id', 'event_type', 'timestamp', 'metadata'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// C0 controls, DEL and C1 controls.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

type JsonObject = Readonly<Record<string, unknown>>;

/** `POST /api/v1/activities`: `{id?, userId, eventType, timestamp, payload}`. */
export function validateActivity(body: unknown): ActivityEvent {
  const object = requireObject(body);
  const errors: FieldError[] = [];
  rejectUnknownFields(object, ACTIVITY_FIELDS, errors);
  const event: ActivityEvent = {
    // A UUID is case-insensitive; lower case makes one idempotency key one messageId.
    ...(object.id === undefined ? {} : { id: checkUuid(errors, 'id', object.id).toLowerCase() }),
    userId: checkText(errors, 'userId', object.userId),
    eventType: checkEventType(errors, 'eventType', object.eventType),
    timestamp: checkTimestamp(errors, 'timestamp', object.timestamp),
    payload: checkPayload(errors, 'payload', object.payload),
  };
  return settle(event, errors);
}

/**
 * `POST /api/v1/events/track`, the older snake_case contract: `user_id` (integer or string) becomes
 * the string `userId`, `event_type` becomes `eventType`, and the optional `metadata` becomes
 * `payload` ({} when absent). Problems are reported under the names the client sent.
 */
export function validateLegacyTrack(body: unknown): ActivityEvent {
  const object = requireObject(body);
  const errors: FieldError[] = [];
  rejectUnknownFields(object, LEGACY_FIELDS, errors);
  const event: ActivityEvent = {
    userId: checkLegacyUserId(errors, 'user_id', object.user_id),
    eventType: checkEventType(errors, 'event_type', object.event_type),
    timestamp: checkTimestamp(errors, 'timestamp', object.timestamp),
    payload: object.metadata === undefined ? {} : checkPayload(errors, 'metadata', object.metadata),
  };
  return settle(event, errors);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

function requireObject(body: unknown): JsonObject {
  if (isObject(body)) return body;
  throw new InvalidEvent(`The body must be a JSON object with userId, eventType, timestamp and payload; got ${describe(body)}.`);
}

function settle(event: ActivityEvent, errors: readonly FieldError[]): ActivityEvent {
  if (errors.length === 0) return event;
  const count = errors.length === 1 ? '1 problem' : `${errors.length} problems`;
  throw new InvalidEvent(`The event has ${count}; see "errors".`, errors.slice(0, MAX_REPORTED_ERRORS));
}

function rejectUnknownFields(object: JsonObject, known: readonly string[], errors: FieldError[]): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) errors.push({ field: key, message: `is not a known field (expected ${known.join(', ')})` });
  }
}

// The checkers below record a problem and return a placeholder; settle() throws before it is used.

function checkText(errors: FieldError[], field: string, value: unknown): string {
  if (value === undefined) errors.push({ field, message: 'is required' });
  else if (typeof value !== 'string') errors.push({ field, message: `must be a string, not ${describe(value)}` });
  else if (value.length === 0) errors.push({ field, message: 'must not be empty' });
  else if ([...value].length > MAX_TEXT_LENGTH) errors.push({ field, message: `must be at most ${MAX_TEXT_LENGTH} characters` });
  else return value;
  return '';
}

function checkEventType(errors: FieldError[], field: string, value: unknown): string {
  const text = checkText(errors, field, value);
  if (CONTROL_CHARACTERS.test(text)) errors.push({ field, message: 'must not contain control characters' });
  return text;
}

function checkLegacyUserId(errors: FieldError[], field: string, value: unknown): string {
  if (typeof value !== 'number') return checkText(errors, field, value);
  if (Number.isSafeInteger(value)) return String(value);
  errors.push({ field, message: 'must be an integer or a string' });
  return '';
}

function checkUuid(errors: FieldError[], field: string, value: unknown): string {
  if (typeof value === 'string' && UUID.test(value)) return value;
  errors.push({ field, message: 'must be a UUID such as 123e4567-e89b-12d3-a456-426614174000' });
  return '';
}

function checkTimestamp(errors: FieldError[], field: string, value: unknown): string {
  const problem = typeof value === 'string' ? timestampProblem(value) : value === undefined ? 'is required' : `must be a string, not ${describe(value)}`;
  if (problem === undefined) return value as string;
  errors.push({ field, message: problem });
  return '';
}

function checkPayload(errors: FieldError[], field: string, value: unknown): JsonObject {
  if (!isObject(value)) {
    errors.push({ field, message: value === undefined ? 'is required' : `must be a JSON object, not ${describe(value)}` });
    return {};
  }
  checkNested(errors, field, value, 1);
  return value;
}

/** Depth counts objects and arrays: the payload itself is level 1. */
function checkNested(errors: FieldError[], path: string, value: object, depth: number): void {
  if (depth > MAX_PAYLOAD_DEPTH) {
    errors.push({ field: path, message: `is nested deeper than ${MAX_PAYLOAD_DEPTH} levels` });
    return;
  }
  const isArray = Array.isArray(value);
  for (const [key, child] of Object.entries(value)) {
    const childPath = isArray ? `${path}[${key}]` : `${path}.${key}`;
    // MongoDB reads `$`-prefixed keys as operators.
    if (!isArray && key.startsWith('$')) errors.push({ field: childPath, message: 'keys must not start with "$"' });
    if (typeof child === 'object' && child !== null) checkNested(errors, childPath, child, depth + 1);
  }
}
