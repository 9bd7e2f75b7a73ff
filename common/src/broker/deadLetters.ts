// Dead letters as the consumer writes them and the replay script reads them back: the header names
// and which of a message's properties a copy keeps.
import type { Message, Options } from 'amqplib';

/** Headers a dead-lettered message carries, for an operator reading it in the management UI. */
export const REJECTION_REASON_HEADER = 'x-rejection-reason';
export const REJECTED_AT_HEADER = 'x-rejected-at';

/**
 * Headers that describe a message's life in a dead-letter queue, not the event: the consumer's
 * reason and time, and the broker's x-death family and delivery count. A replayed copy starts
 * afresh, and a copy carrying x-death could be taken by the broker for a dead-letter cycle and dropped.
 */
const DEAD_LETTER_HEADERS = new Set([
  REJECTION_REASON_HEADER,
  REJECTED_AT_HEADER,
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
  'x-delivery-count',
]);

/**
 * The properties of a copy of `message`: those that describe its content, always persistent. Not
 * `expiration` (the copy must not expire) nor `userId` (the broker checks it against the
 * publishing connection's user).
 */
function contentProperties(message: Message): Options.Publish {
  const { contentType, contentEncoding, priority, correlationId, replyTo, messageId, timestamp, type, appId } = message.properties as Message['properties'] & { timestamp?: number };
  const kept = { contentType, contentEncoding, priority, correlationId, replyTo, messageId, timestamp, type, appId };
  return { ...Object.fromEntries(Object.entries(kept).filter(([, value]) => value !== undefined)), persistent: true };
}

/** The consumer's dead-letter copy: the original's headers plus `headers` (the reason and time). */
export function deadLetterProperties(message: Message, headers: Readonly<Record<string, string>>): Options.Publish {
  return { ...contentProperties(message), headers: { ...message.properties.headers, ...headers } };
}

/**
 * A replayed copy, or an unmatched dead letter put back: without the dead-letter headers when it
 * goes back to its queue, with them when it goes back to the dead-letter queue. Mandatory, so a
 * queue deleted meanwhile comes back as basic.return, not as a silent confirm.
 */
export function copyProperties(message: Message, keepDeadLetterHeaders: boolean): Options.Publish {
  const headers = Object.entries(message.properties.headers ?? {}).filter(([name]) => keepDeadLetterHeaders || !DEAD_LETTER_HEADERS.has(name));
  return { ...contentProperties(message), headers: Object.fromEntries(headers), mandatory: true };
}
