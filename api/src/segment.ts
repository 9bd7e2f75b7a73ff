// The Segment tracking spec (what the Segment and RudderStack SDKs send to /v1/*) mapped onto the
// stored event, under the same event contract as the native routes. Pure: the receive time is given.
//   id        the name-based UUID of messageId (a retry with the same messageId is stored once);
//             a call without one is given a fresh id when it is published
//   userId    userId, else anonymousId (an integer either way becomes its decimal string)
//   eventType the `event` of a track call; the call type otherwise
//   timestamp timestamp, else originalTimestamp, else the receive time
//   payload   the rest of the call, `type` included, as sent: a key the contract refuses (a "." or
//             leading "$") refuses the call, with its path, rather than being altered
import type { ActivityEvent } from '@event-tracker/shared';
import { Problems, checkPayload, checkText, checkTimestamp, describe, isObject, type JsonObject } from '@event-tracker/common/eventContract.ts';
import { InvalidEvent, callTooLarge } from './errors.ts';
import { uuidV5 } from './uuidV5.ts';

export const CALL_TYPES = ['track', 'identify', 'page', 'screen', 'group', 'alias'] as const;
export type CallType = (typeof CALL_TYPES)[number];

/** The namespace of ids derived from messageId. Fixed for good: changing it would store a retry twice. */
export const MESSAGE_ID_NAMESPACE = '9dc9de4a-1df5-401e-ab42-1cfee37cd953';

/**
 * Fields of a /v1/batch body besides `batch`, which clients send and nothing reads: the Segment
 * client repeats the write key (never taken as a credential: the key is checked before the body is
 * read), and both clients add the time they sent the batch.
 */
const ENVELOPE = ['batch', 'writeKey', 'sentAt', 'timestamp'];

export interface BatchLimits {
  /** A call of the batch, as JSON, in bytes. */
  readonly maxCallBytes: number;
  readonly maxCalls: number;
}

/** A call posted alone to `/v1/<type>`; problems are named from its root (`properties.a`). */
export function mapCall(body: unknown, type: CallType, receivedAt: Date): ActivityEvent {
  if (!isObject(body)) throw new InvalidEvent(`The body must be a JSON object (a Segment ${type} call); got ${describe(body)}.`);
  const problems = new RootProblems();
  const event = mapOne(problems, body, '', type, receivedAt);
  if (problems.empty) return event;
  throw new InvalidEvent(`The call has ${problems.summary()}; see "errors".`, problems.list);
}

/**
 * `/v1/batch`: `{"batch": [call, ...]}`, each call naming its `type`. All or nothing, as the native
 * batch: a call over the per-call limit is 413, any other problem 400, named `batch[<i>].<path>`.
 */
export function mapBatch(body: unknown, limits: BatchLimits, receivedAt: Date): ActivityEvent[] {
  const object = isObject(body) ? body : undefined;
  const batch = object?.batch;
  if (!Array.isArray(batch)) throw new InvalidEvent(`The body must be a JSON object {"batch": [call, ...]}; got ${object === undefined ? describe(body) : `"batch" as ${describe(batch)}`}.`);
  if (batch.length === 0) throw new InvalidEvent('The batch is empty; send at least one call.');
  if (batch.length > limits.maxCalls) throw new InvalidEvent(`The batch holds ${batch.length} calls; send at most ${limits.maxCalls} per request.`);
  batch.forEach((call, index) => {
    if (Buffer.byteLength(JSON.stringify(call)) > limits.maxCallBytes) throw callTooLarge(`batch[${index}]`, limits.maxCallBytes);
  });
  const problems = new Problems();
  for (const key of Object.keys(object!)) if (!ENVELOPE.includes(key)) problems.add(key, `is not a known field (expected ${ENVELOPE.join(', ')})`);
  const events = batch.map((call, index) => {
    if (isObject(call)) return mapOne(problems, call, `batch[${index}]`, undefined, receivedAt);
    problems.add(`batch[${index}]`, `must be a call object, not ${describe(call)}`);
    return undefined;
  });
  if (!problems.empty) throw new InvalidEvent(`The batch has ${problems.summary()}; see "errors". Nothing of it was accepted.`, problems.list);
  return events as ActivityEvent[];
}

/** One call at `path` ('' for a call posted alone); `routeType` is the type its route implies. */
function mapOne(problems: Problems, call: JsonObject, path: string, routeType: CallType | undefined, receivedAt: Date): ActivityEvent {
  const at = (field: string): string => (path === '' ? field : `${path}.${field}`);
  const type = callType(problems, at('type'), call.type, routeType);
  const eventType = type === 'track' ? checkText(problems, at('event'), call.event) : (type ?? '');
  const userId = identity(problems, call, path);
  const [stampField, stamp] = call.timestamp !== undefined ? ['timestamp', call.timestamp] : ['originalTimestamp', call.originalTimestamp];
  const timestamp = stamp === undefined ? receivedAt.toISOString() : checkTimestamp(problems, at(stampField), stamp);
  const messageId = call.messageId === undefined ? undefined : checkText(problems, at('messageId'), call.messageId);
  const payload = checkPayload(problems, path, payloadOf(call, type));
  const fields = { userId, eventType, timestamp, payload };
  return messageId === undefined ? fields : { id: uuidV5(MESSAGE_ID_NAMESPACE, messageId), ...fields };
}

function callType(problems: Problems, field: string, value: unknown, routeType: CallType | undefined): CallType | undefined {
  if (routeType !== undefined) {
    if (value === undefined || value === routeType) return routeType;
    problems.add(field, `must be "${routeType}" on /v1/${routeType}, or left out`);
    return routeType;
  }
  if (CALL_TYPES.includes(value as CallType)) return value as CallType;
  problems.add(field, value === undefined ? `is required (one of ${CALL_TYPES.join(', ')})` : `must be one of ${CALL_TYPES.join(', ')}`);
  return undefined;
}

/** userId, else anonymousId; null counts as absent, as the Segment spec sends it for anonymous users. */
function identity(problems: Problems, call: JsonObject, path: string): string {
  const field = call.userId !== undefined && call.userId !== null ? 'userId' : 'anonymousId';
  const value = call[field];
  const at = path === '' ? field : `${path}.${field}`;
  if (value === undefined || value === null) {
    if (path === '') problems.add('userId', 'is required, or anonymousId');
    else problems.add(path, 'has neither userId nor anonymousId; one is required');
    return '';
  }
  if (typeof value !== 'number') return checkText(problems, at, value);
  // The Segment API keeps a numeric id as its decimal string; only an exact integer is one.
  if (Number.isSafeInteger(value)) return String(value);
  problems.add(at, 'must be a string, or an integer within ±(2^53 − 1)');
  return '';
}

/**
 * The call without the fields that became the event's own (`userId`, a track's `event`, the
 * `timestamp`) and without `writeKey`, which must never be stored; `type` first. Copied with
 * defineProperty, so a `__proto__` key stays a plain own property, as JSON.parse made it.
 */
function payloadOf(call: JsonObject, type: CallType | undefined): JsonObject {
  const lifted = type === 'track' ? ['userId', 'event', 'timestamp', 'writeKey'] : ['userId', 'timestamp', 'writeKey'];
  const payload: Record<string, unknown> = {};
  const put = (key: string, value: unknown) => Object.defineProperty(payload, key, { value, enumerable: true, writable: true, configurable: true });
  put('type', type ?? call.type);
  for (const [key, value] of Object.entries(call)) if (key !== 'type' && !lifted.includes(key)) put(key, value);
  return payload;
}

/** A call posted alone has no path of its own: its payload problems read `properties.a`, not `.properties.a`. */
class RootProblems extends Problems {
  override add(field: string, message: string): void {
    super.add(field.startsWith('.') ? field.slice(1) : field, message);
  }
}
