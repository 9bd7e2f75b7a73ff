// Errors the API answers on purpose. Each carries a stable `code` (its problem type is
// `/problems/<code>`), the HTTP status, and any headers the answer needs.
import type { FieldError } from '@event-tracker/shared';

export type ErrorStatus = 400 | 404 | 405 | 408 | 413 | 415 | 429 | 503;

export class AppError extends Error {
  readonly code: string;
  readonly status: ErrorStatus;
  readonly title: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly errors: readonly FieldError[] | undefined;
  /** The event's id, on answers where a retry with it is the way forward. */
  readonly id: string | undefined;

  constructor(
    code: string,
    status: ErrorStatus,
    title: string,
    detail: string,
    extra: { headers?: Record<string, string>; errors?: readonly FieldError[]; id?: string; cause?: unknown } = {},
  ) {
    super(detail, { cause: extra.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.title = title;
    this.headers = extra.headers ?? {};
    this.errors = extra.errors;
    this.id = extra.id;
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
    super('body-too-large', 413, 'Content Too Large', `The body must be at most ${maxBytes} bytes.`, { headers: { Connection: 'close' } });
  }
}

/**
 * Answered before the body is read, as is 429: the connection is closed rather than spend time and
 * bandwidth draining a body nobody will read.
 */
const UNREAD_BODY = { Connection: 'close' };

export class UnsupportedMediaType extends AppError {
  constructor() {
    super('unsupported-media-type', 415, 'Unsupported Media Type', 'Send the event with Content-Type: application/json (UTF-8).', { headers: UNREAD_BODY });
  }
}

export class RateLimited extends AppError {
  constructor(retryAfterSeconds: number) {
    super('rate-limited', 429, 'Too Many Requests', `Rate limit reached; retry in ${retryAfterSeconds} s.`, {
      headers: { 'Retry-After': String(retryAfterSeconds), ...UNREAD_BODY },
    });
  }
}

/** How long a client should wait after a 503: about one reconnect attempt of the broker connection. */
export const QUEUE_RETRY_AFTER_SECONDS = 5;

const RETRY_AFTER = { 'Retry-After': String(QUEUE_RETRY_AFTER_SECONDS) };

/** Why a publish failed, for the `api_publish_failures_total` metric. */
export type PublishFailure = 'not-connected' | 'blocked' | 'over-capacity' | 'no-room' | 'channel-closing' | 'nacked' | 'returned' | 'confirm-timeout' | 'connection-lost';

/** Nothing reached the broker, or it refused the event: it is not stored. */
export class QueueUnavailable extends AppError {
  readonly reason: PublishFailure;
  constructor(reason: PublishFailure, detail: string, id: string, cause?: unknown) {
    super('queue-unavailable', 503, 'Service Unavailable', `The event was not accepted: ${detail}. Retry with id ${id}; it is stored once.`, {
      headers: RETRY_AFTER,
      id,
      cause,
    });
    this.reason = reason;
  }
}

/** The event was sent but never confirmed: the broker may hold it, so only a retry with its id is safe. */
export class PublishOutcomeUnknown extends AppError {
  readonly reason: PublishFailure;
  constructor(reason: PublishFailure, detail: string, id: string, cause?: unknown) {
    super(
      'publish-outcome-unknown',
      503,
      'Service Unavailable',
      `The event may or may not have been queued: ${detail}. Retry with id ${id}; it is stored once either way.`,
      { headers: RETRY_AFTER, id, cause },
    );
    this.reason = reason;
  }
}
