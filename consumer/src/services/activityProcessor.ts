// Turns one queue message into the activity the consumer stores, or into the reason it cannot be
// stored. Pure: no I/O, no clock, so every kind of bad message is a plain unit test.
import { createHash } from 'node:crypto';
import type { QueueMessage, ReceivedAtHeader, StoredActivity } from '@event-tracker/shared';
import { timestampProblem } from '../timestamp.ts';

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

export type ParseResult = { readonly ok: true; readonly activity: ParsedActivity } | { readonly ok: false; readonly reason: string };

const RECEIVED_AT: ReceivedAtHeader = 'receivedAt';
const MAX_ID_LENGTH = 128;

export function parseDelivery(message: IncomingMessage): ParseResult {
  let body: unknown;
  try {
    body = JSON.parse(message.content.toString('utf8'));
  } catch {
    return reject('body is not valid JSON');
  }
  if (!isPlainObject(body)) return reject('body is not a JSON object');
  const event = body as Partial<Record<keyof QueueMessage, unknown>>;

  const messageId = message.properties.messageId;
  if (messageId !== undefined && !isId(messageId)) return reject(`messageId must be a string of 1 to ${MAX_ID_LENGTH} characters`);
  if (event.id !== undefined && !isId(event.id)) return reject(`id must be a string of 1 to ${MAX_ID_LENGTH} characters`);
  if (messageId !== undefined && event.id !== undefined && messageId !== event.id) return reject('messageId does not match the id in the body');

  if (!isNonEmptyString(event.userId)) return reject('userId must be a non-empty string');
  if (!isNonEmptyString(event.eventType)) return reject('eventType must be a non-empty string');
  const timestamp = parseTimestamp(event.timestamp);
  if (!timestamp) return reject('timestamp must be an RFC 3339 date-time with a zone designator');
  if (!isPlainObject(event.payload)) return reject('payload must be a JSON object');

  // Both ids were checked above. Without either, hash the body: a redelivery of the same bytes maps to
  // the same _id, so it still collides instead of duplicating.
  const id = (messageId ?? event.id ?? idFromContent(message.content)) as string;
  const receivedAt = parseReceivedAt(message.properties.headers?.[RECEIVED_AT]);
  const activity: ParsedActivity = {
    _id: id,
    id,
    userId: event.userId,
    eventType: event.eventType,
    timestamp,
    payload: event.payload,
    ...(receivedAt ? { receivedAt } : {}),
  };
  return { ok: true, activity };
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

function reject(reason: string): ParseResult {
  return { ok: false, reason };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.trim().length > 0;
}

function isId(value: unknown): value is string {
  // Control characters would make ids unreadable in logs and URLs; none of the API's ids carry them.
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH && !/[\u0000-\u001f\u007f]/.test(value);
}

/** The same RFC 3339 calendar check the API applies, so anything the API accepted parses here. */
function parseTimestamp(value: unknown): Date | undefined {
  if (typeof value !== 'string' || timestampProblem(value) !== undefined) return undefined;
  return new Date(value);
}

/** The API's receive time; a missing or unreadable header is left out, never a reason to reject. */
function parseReceivedAt(value: unknown): Date | undefined {
  if (typeof value !== 'string') return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
