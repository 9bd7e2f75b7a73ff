// Errors the API answers on purpose. Each carries a stable `code` (its problem type is
// `/problems/<code>`), the HTTP status, and any headers the answer needs.
import type { FieldError } from '@event-tracker/shared';

export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 408 | 413 | 415 | 429 | 503;

export class AppError extends Error {
  readonly code: string;
  readonly status: ErrorStatus;
  readonly title: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly errors: readonly FieldError[] | undefined;
  /** The event's id, on answers where a retry with it is the way forward. */
  readonly id: string | undefined;
  /** A batch's ids, in request order, on answers where a retry of the batch with them is the way forward. */
  readonly ids: readonly string[] | undefined;

  constructor(
    code: string,
    status: ErrorStatus,
    title: string,
    detail: string,
    extra: { headers?: Record<string, string>; errors?: readonly FieldError[]; id?: string; ids?: readonly string[]; cause?: unknown } = {},
  ) {
    super(detail, { cause: extra.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.title = title;
    this.headers = extra.headers ?? {};
    this.errors = extra.errors;
    this.id = extra.id;
    this.ids = extra.ids;
  }
}

export class InvalidEvent extends AppError {
  constructor(detail: string, errors?: readonly FieldError[]) {
    super('invalid-event', 400, 'Invalid event', detail, errors === undefined ? {} : { errors });
  }
}

export class NotFound extends AppError {
  constructor() {
    super('not-found', 404, 'Not Found', 'No resource at this path.');
  }
}

export class MethodNotAllowed extends AppError {
  constructor(allowed: readonly string[]) {
    const allow = allowed.join(', ');
    super('method-not-allowed', 405, 'Method Not Allowed', `This path accepts ${allow} only.`, { headers: { Allow: allow } });
  }
}

export class BodyTimeout extends AppError {
  constructor(timeoutMs: number) {
    // As with 413, the rest of the body is never read.
    super('body-timeout', 408, 'Request Timeout', `The body did not arrive within ${timeoutMs} ms.`, { headers: { Connection: 'close' } });
  }
}

export class BodyTooLarge extends AppError {
  constructor(maxBytes: number) {
    // The rest of the body is never read, so the connection cannot carry another request.
    super('body-too-large', 413, 'Content Too Large', `The body must be at most ${maxBytes} bytes, as sent and once decompressed.`, { headers: { Connection: 'close' } });
  }
}

/** One call of a Segment batch over the per-call limit: the same problem type, naming the call. */
export function callTooLarge(call: string, maxBytes: number): AppError {
  return new AppError('body-too-large', 413, 'Content Too Large', `${call} must be at most ${maxBytes} bytes as JSON; nothing of the batch was accepted.`);
}

/** One event of a native batch over the limit of an event posted alone, as it sits in the body. */
export function eventTooLarge(event: string, maxBytes: number): AppError {
  return new AppError('body-too-large', 413, 'Content Too Large', `${event} must be at most ${maxBytes} bytes, as an event posted alone; nothing of the batch was accepted.`);
}

/**
 * Answered before the body is read, as is 429: the connection is closed rather than spend time and
 * bandwidth draining a body nobody will read.
 */
const UNREAD_BODY = { Connection: 'close' };

export class UnsupportedMediaType extends AppError {
  constructor() {
    super('unsupported-media-type', 415, 'Unsupported Media Type', 'Send the event with Content-Type: application/json or text/plain (UTF-8 JSON either way).', {
      headers: UNREAD_BODY,
    });
  }
}

export class UnsupportedEncoding extends AppError {
  constructor(supported: readonly string[]) {
    const accepted = supported.join(', ');
    super('unsupported-encoding', 415, 'Unsupported Media Type', `Send the body uncompressed or with one Content-Encoding of ${accepted}.`, {
      headers: { 'Accept-Encoding': accepted, ...UNREAD_BODY },
    });
  }
}

/** The challenge of every 401 (RFC 9110 §11.6.1): Basic, the scheme the Segment and RudderStack clients use. */
const WWW_AUTHENTICATE = 'Basic realm="event-tracker"';

/** No write key, or one that is not in WRITE_KEYS. The detail never repeats what was sent. */
export class Unauthorized extends AppError {
  constructor(presented: boolean) {
    const detail = presented
      ? 'The write key is not one of those this API accepts.'
      : 'Send a write key: Authorization: Basic with the key as user name, Authorization: Bearer <key>, X-Write-Key: <key>, or ?writeKey=<key>.';
    super('unauthorized', 401, 'Unauthorized', detail, { headers: { 'WWW-Authenticate': WWW_AUTHENTICATE, ...UNREAD_BODY } });
  }
}

export class OriginNotAllowed extends AppError {
  constructor() {
    super('origin-not-allowed', 403, 'Forbidden', 'This origin may not send events here (CORS_ALLOWED_ORIGINS).');
  }
}

export class RateLimited extends AppError {
  constructor(retryAfterSeconds: number) {
    super('rate-limited', 429, 'Too Many Requests', `Rate limit reached; retry in ${retryAfterSeconds} s.`, {
      headers: { 'Retry-After': String(retryAfterSeconds), ...UNREAD_BODY },
    });
  }
}

const OVERLOAD_RETRY_AFTER_SECONDS = 2;

/**
 * Shed before any work: the event loop is running late or too many requests are in hand. Retry-After
 * is short, since overload passes with the backlog; the body is never read, as with 429.
 */
export class Overloaded extends AppError {
  constructor() {
    super('overloaded', 503, 'Service Unavailable', `The API is overloaded; retry in ${OVERLOAD_RETRY_AFTER_SECONDS} s.`, {
      headers: { 'Retry-After': String(OVERLOAD_RETRY_AFTER_SECONDS), ...UNREAD_BODY },
    });
  }
}

/** How long a client should wait after a 503: about one reconnect attempt of the broker connection. */
const QUEUE_RETRY_AFTER_SECONDS = 5;

const RETRY_AFTER = { 'Retry-After': String(QUEUE_RETRY_AFTER_SECONDS) };

/** Why a publish failed, for the `api_publish_failures_total` metric. */
export type PublishFailure = 'not-connected' | 'blocked' | 'over-capacity' | 'no-room' | 'channel-closing' | 'nacked' | 'returned' | 'confirm-timeout' | 'connection-lost';

/** A publish that did not end in a confirm: why, in a word for the metric and in words for the client. */
export class PublishFailed extends AppError {
  readonly reason: PublishFailure;
  /** What happened, in words, without the advice. */
  readonly why: string;
  constructor(
    code: string,
    status: 503,
    title: string,
    detail: string,
    failure: { reason: PublishFailure; why: string; id?: string; ids?: readonly string[]; cause?: unknown },
  ) {
    const { reason, why, ...extra } = failure;
    super(code, status, title, detail, { headers: RETRY_AFTER, ...extra });
    this.reason = reason;
    this.why = why;
  }
}

/**
 * A batch of which some event failed: the same problem type and reason as that failure, carrying
 * every id of the batch, since only a retry of the whole batch with those ids is known to store each once.
 */
export function batchFailure(failure: PublishFailed, ids: readonly string[]): PublishFailed {
  const what = failure instanceof PublishOutcomeUnknown ? 'Some events of the batch may or may not have been queued' : 'The batch was not accepted';
  const detail = `${what}: ${failure.why}. Retry the whole batch with the ids in "ids"; each event is stored once.`;
  return new PublishFailed(failure.code, 503, failure.title, detail, { reason: failure.reason, why: failure.why, ids, cause: failure });
}

/** Nothing reached the broker, or it refused the event: it is not stored. */
export class QueueUnavailable extends PublishFailed {
  constructor(reason: PublishFailure, detail: string, id: string, cause?: unknown) {
    super('queue-unavailable', 503, 'Service Unavailable', `The event was not accepted: ${detail}. Retry with id ${id}; it is stored once.`, { reason, why: detail, id, cause });
  }
}

/** The event was sent but never confirmed: the broker may hold it, so only a retry with its id is safe. */
export class PublishOutcomeUnknown extends PublishFailed {
  constructor(reason: PublishFailure, detail: string, id: string, cause?: unknown) {
    super(
      'publish-outcome-unknown',
      503,
      'Service Unavailable',
      `The event may or may not have been queued: ${detail}. Retry with id ${id}; it is stored once either way.`,
      { reason, why: detail, id, cause },
    );
  }
}
