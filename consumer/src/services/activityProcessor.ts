// Decides what one queue message is: the activity the consumer stores, or a rejection saying why it
// can never be stored. The one place that parses and applies the event contract (the API's own,
// common/src/eventContract.ts). Pure: no I/O, no clock, so every kind of bad message is a unit test.
import { createHash } from 'node:crypto';
import type { QueueMessage, ReceivedAtHeader, StoredActivity } from '@event-tracker/shared';
import { Problems, checkEventFields, checkText, describe, isObject, type EventFields } from '@event-tracker/common/eventContract.ts';
import { decodeJson } from '@event-tracker/common/json.ts';
import { rejection, type Rejection } from './verdict.ts';

/** The parts of an AMQP message the parser reads; amqplib's `Message` satisfies it. */
export interface IncomingMessage {
  readonly content: Buffer;
  readonly properties: {
    readonly messageId?: unknown;
    readonly headers?: Readonly<Record<string, unknown>> | undefined;
  };
}

/** A stored activity before the write that stamps `processedAt`. */
export type ParsedActivity = Omit<StoredActivity, 'processedAt'>;

/** What a message is: an activity to write, or a rejection saying why it can never be stored. */
export type Parsed = { readonly verdict: 'activity'; readonly activity: ParsedActivity } | Rejection;

const RECEIVED_AT: ReceivedAtHeader = 'receivedAt';
const MAX_ID_LENGTH = 128;
/** How many of a message's contract problems its rejection reason names. */
const REASON_PROBLEMS = 3;

export function parseDelivery(message: IncomingMessage): Parsed {
  const decoded = decodeJson(message.content);
  if (!decoded.ok) return rejection('unparseable', decoded.reason);
  if (!isObject(decoded.value)) return rejection('unparseable', `The body is not a JSON object, but ${describe(decoded.value)}`);
  const event = decoded.value as Partial<Record<keyof QueueMessage, unknown>>;

  const messageId = message.properties.messageId;
  if (messageId !== undefined && !isId(messageId)) return rejection('contract', `messageId must be a string of 1 to ${MAX_ID_LENGTH} visible characters`);
  if (event.id !== undefined && !isId(event.id)) return rejection('contract', `id must be a string of 1 to ${MAX_ID_LENGTH} visible characters`);
  if (messageId !== undefined && event.id !== undefined && messageId !== event.id) return rejection('contract', 'messageId does not match the id in the body');

  // The API checked these with the same contract; a message put on the queue by anything else is
  // held to it here, so nothing the database would alter or refuse reaches it.
  const problems = new Problems();
  const fields = checkEventFields(problems, event as Record<keyof EventFields, unknown>);
  // The API's write-key name, absent while WRITE_KEYS is unset; held to the rules of an id.
  const source = event.source === undefined ? undefined : checkText(problems, 'source', event.source);
  if (!problems.empty) {
    const named = problems.list.slice(0, REASON_PROBLEMS).map(({ field, message: text }) => `${field} ${text}`);
    const more = problems.count > REASON_PROBLEMS ? ` (and ${problems.count - REASON_PROBLEMS} more)` : '';
    return rejection('contract', `${named.join('; ')}${more}`);
  }

  // Both ids were checked above. Without either, hash the body: a redelivery of the same bytes maps to
  // the same _id, so it still collides instead of duplicating.
  const id = (messageId ?? event.id ?? idFromContent(message.content)) as string;
  // In the body since the API stopped sending the header; a message queued before then has the header.
  const receivedAt = parseReceivedAt(event.receivedAt ?? message.properties.headers?.[RECEIVED_AT]);
  const activity: ParsedActivity = {
    _id: id,
    id,
    userId: fields.userId,
    eventType: fields.eventType,
    timestamp: new Date(fields.timestamp),
    payload: fields.payload,
    ...(source === undefined ? {} : { source }),
    ...(receivedAt ? { receivedAt } : {}),
  };
  return { verdict: 'activity', activity };
}

/** The document as written: the parsed activity stamped with the time of the write. */
export function toDocument(activity: ParsedActivity, processedAt: Date): StoredActivity {
  return { ...activity, processedAt };
}

/** SHA-256 of the body laid out as an RFC 9562 version-8 (custom) UUID. */
export function idFromContent(content: Buffer): string {
  const hex = createHash('sha256').update(content).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function isId(value: unknown): value is string {
  // Control characters would make ids unreadable in logs and URLs; none of the API's ids carry them.
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH && value.isWellFormed() && !/[\u0000-\u001f\u007f]/.test(value);
}

/** The API's receive time; a missing or unreadable one is left out, never a reason to reject. */
function parseReceivedAt(value: unknown): Date | undefined {
  if (typeof value !== 'string') return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
