// The one event contract. The API's validator and the consumer's parser both check events with
// these functions, so what the API answers 202 to is what the consumer stores: exactly what
// MongoDB stores as sent. JSON that the driver would alter (a lone surrogate becomes U+FFFD,
// 1e400 becomes null, an integer past 2^53 is rounded) or that MongoDB refuses (a NUL, "." or
// leading "$" in a key) is refused here, with a message saying what to send instead.
import type { FieldError } from '@event-tracker/shared';
import { timestampProblem } from './timestamp.ts';

const MAX_TEXT_LENGTH = 255;
export const MAX_PAYLOAD_DEPTH = 32;
/** Enough to fix a request by; a payload full of bad keys must not make a huge answer. */
export const MAX_REPORTED_ERRORS = 20;
/** A reported field path is cut to this many characters, so a 400 never echoes a long key. */
const MAX_FIELD_PATH_LENGTH = 120;
/**
 * A payload key names a field, so it gets the bound of the names the contract already takes
 * (userId, eventType): far past any property name an SDK or a person writes, while text longer
 * than that is data and belongs in a value.
 */
const MAX_KEY_LENGTH = MAX_TEXT_LENGTH;
/**
 * The largest event body either route may take (MAX_BODY_BYTES is capped at it). Re-encoded as
 * BSON, JSON grows at most about 6x (`[0,0,...]`: 2 bytes each in JSON, 12 in a BSON array),
 * so an event stays well under MongoDB's 16 MiB document limit. common/tests checks the bound.
 */
export const MAX_EVENT_BYTES = 1_048_576;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Control (Cc), format (Cf), line and paragraph separator characters: invisible or line-breaking in ids. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

export type JsonObject = Readonly<Record<string, unknown>>;

/** The four fields every event has, checked. */
export interface EventFields {
  readonly userId: string;
  readonly eventType: string;
  readonly timestamp: string;
  readonly payload: JsonObject;
}

/** The names a route's clients know the four fields by, for error paths. */
export type FieldNames = Readonly<Record<keyof EventFields, string>>;

export const FIELD_NAMES: FieldNames = { userId: 'userId', eventType: 'eventType', timestamp: 'timestamp', payload: 'payload' };

/** Where a payload problem is: the payload's field name, then keys (`.key`) and array indexes (`[i]`). */
export type PayloadPath = [root: string, ...segments: Array<string | number>];

/** Collects problems: all are counted, the first MAX_REPORTED_ERRORS kept, each path bounded. */
export class Problems {
  readonly list: FieldError[] = [];
  count = 0;

  add(field: string, message: string): void {
    this.count += 1;
    if (this.list.length < MAX_REPORTED_ERRORS) this.list.push({ field: boundedPath(field), message });
  }

  /**
   * A problem inside a payload. Its path is built only while the problem is kept, and only as far
   * as the cut: otherwise a payload of many bad values under one long key costs the key's length
   * for every value, which grows with the square of the body.
   */
  addAt(path: Readonly<PayloadPath>, message: string): void {
    if (this.list.length < MAX_REPORTED_ERRORS) this.add(joinPath(path), message);
    else this.count += 1;
  }

  get empty(): boolean {
    return this.count === 0;
  }

  /** "1 problem" or "N problems", for a detail line. */
  summary(): string {
    return this.count === 1 ? '1 problem' : `${this.count} problems`;
  }
}

/** Checks `userId`, `eventType`, `timestamp` and `payload`; placeholders stand in for bad values. */
export function checkEventFields(problems: Problems, fields: Readonly<Record<keyof EventFields, unknown>>, names: FieldNames = FIELD_NAMES): EventFields {
  return {
    userId: checkText(problems, names.userId, fields.userId),
    eventType: checkText(problems, names.eventType, fields.eventType),
    timestamp: checkTimestamp(problems, names.timestamp, fields.timestamp),
    payload: checkPayload(problems, names.payload, fields.payload),
  };
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

/** An id or type: a non-blank, well-formed string of visible characters, at most 255 code points. */
export function checkText(problems: Problems, field: string, value: unknown): string {
  if (value === undefined) problems.add(field, 'is required');
  else if (typeof value !== 'string') problems.add(field, `must be a string, not ${describe(value)}`);
  else if (value.trim().length === 0) problems.add(field, value.length === 0 ? 'must not be empty' : 'must not be blank');
  else if (!value.isWellFormed()) problems.add(field, 'must be well-formed Unicode (no lone surrogates)');
  else if (INVISIBLE.test(value)) problems.add(field, 'must not contain control, format or line-separator characters');
  else if (value.length > MAX_TEXT_LENGTH && codePoints(value) > MAX_TEXT_LENGTH) problems.add(field, `must be at most ${MAX_TEXT_LENGTH} characters`);
  else return value;
  return '';
}

export function checkTimestamp(problems: Problems, field: string, value: unknown): string {
  const problem = typeof value === 'string' ? timestampProblem(value) : value === undefined ? 'is required' : `must be a string, not ${describe(value)}`;
  if (problem === undefined) return value as string;
  problems.add(field, problem);
  return '';
}

export function checkPayload(problems: Problems, field: string, value: unknown): JsonObject {
  if (!isObject(value)) {
    problems.add(field, value === undefined ? 'is required' : `must be a JSON object, not ${describe(value)}`);
    return {};
  }
  checkTree(problems, [field], value, 1);
  return value;
}

/**
 * Every key and value below `value`. `path` is a stack of segments, joined only when a problem is
 * kept, so a valid payload costs no string building. Depth counts objects and arrays: the payload
 * itself is level 1. Arrays are walked by index: Object.entries would make a key string and a pair
 * for every element.
 */
function checkTree(problems: Problems, path: PayloadPath, value: object, depth: number): void {
  if (depth > MAX_PAYLOAD_DEPTH) return problems.addAt(path, `is nested deeper than ${MAX_PAYLOAD_DEPTH} levels`);
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      path.push(index);
      checkValue(problems, path, value[index], depth);
      path.pop();
    }
    return;
  }
  for (const key of Object.keys(value)) {
    path.push(key);
    const problem = keyProblem(key);
    if (problem !== undefined) problems.addAt(path, problem);
    checkValue(problems, path, (value as JsonObject)[key], depth);
    path.pop();
  }
}

function checkValue(problems: Problems, path: PayloadPath, value: unknown, depth: number): void {
  if (typeof value === 'string') {
    if (!value.isWellFormed()) problems.addAt(path, 'must be well-formed Unicode (no lone surrogates)');
  } else if (typeof value === 'number') {
    const problem = numberProblem(value);
    if (problem !== undefined) problems.addAt(path, problem);
  } else if (typeof value === 'object' && value !== null) {
    checkTree(problems, path, value, depth + 1);
  }
}

function keyProblem(key: string): string | undefined {
  // MongoDB reads `$` keys as operators, and a `.` as a path into a sub-document.
  if (key.startsWith('$')) return 'keys must not start with "$"';
  if (key.includes('.')) return 'keys must not contain "."';
  // BSON keys are NUL-terminated C strings.
  if (key.includes('\u0000')) return 'keys must not contain NUL (\\u0000)';
  if (!key.isWellFormed()) return 'keys must be well-formed Unicode (no lone surrogates)';
  if (key.length > MAX_KEY_LENGTH && codePoints(key) > MAX_KEY_LENGTH) return `keys must be at most ${MAX_KEY_LENGTH} characters`;
  return undefined;
}

function numberProblem(value: number): string | undefined {
  // JSON.parse reads 1e400 as Infinity, which MongoDB would store as a double and JSON as null.
  if (!Number.isFinite(value)) return 'must be a finite number';
  if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
    return 'is an integer beyond ±(2^53 − 1), which cannot be stored exactly; send a larger integer as a string';
  }
  return undefined;
}

function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

/**
 * The path as text, stopped a little past the cut: boundedPath cuts it exactly as it would the whole
 * path, and a subclass that drops a leading "." (segment.ts) still has enough.
 */
function joinPath([root, ...segments]: Readonly<PayloadPath>): string {
  const enough = MAX_FIELD_PATH_LENGTH + 2;
  let text = root.slice(0, enough);
  for (const segment of segments) {
    if (text.length >= enough) break;
    text += typeof segment === 'number' ? `[${segment}]` : `.${segment.slice(0, enough)}`;
  }
  return text;
}

function boundedPath(path: string): string {
  if (path.length <= MAX_FIELD_PATH_LENGTH) return path;
  // Cut at a code point, so a surrogate pair is never split into a lone half.
  return `${Array.from(path.slice(0, MAX_FIELD_PATH_LENGTH)).slice(0, -1).join('')}…`;
}
