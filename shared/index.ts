// Types shared by the API and the consumer. This package holds types only: both services
// import it with `import type`, so neither needs it at run time.

/** A user-activity event as a client posts it to `POST /api/v1/activities`. */
export interface ActivityEvent {
  /** Optional client-chosen UUID; doubles as the idempotency key. */
  readonly id?: string;
  readonly userId: string;
  readonly eventType: string;
  /** RFC 3339 date-time with a zone designator, e.g. `2023-10-27T10:00:00Z`. */
  readonly timestamp: string;
  readonly payload: Readonly<Record<string, unknown>>;
}

/**
 * The JSON body of a message on the queue: the validated event with its id settled and the API's
 * receive time. AMQP properties carry the rest: `messageId` = `id`, `timestamp` = receive time
 * (seconds).
 */
export interface QueueMessage {
  readonly id: string;
  readonly userId: string;
  readonly eventType: string;
  readonly timestamp: string;
  readonly payload: Readonly<Record<string, unknown>>;
  /** The name (never the key) of the write key the event came with; absent while WRITE_KEYS is unset. */
  readonly source?: string;
  /** ISO 8601, set by the API's publisher; the consumer stores it as `receivedAt`. */
  readonly receivedAt?: string;
}

/**
 * The AMQP header that carried the receive time before it moved into the body (amqplib encodes a
 * header table per message, the one large item of BENCHMARKS.md section 0's profile); the consumer
 * still reads it from messages queued then.
 */
export type ReceivedAtHeader = 'receivedAt';

/** The document the consumer stores in the `activities` collection. */
export interface StoredActivity {
  /**
   * The event id, so a redelivered message collides instead of duplicating; with WRITE_KEYS, an id
   * another source's event already holds is stored as `<source>:<id>` (ids are unique per source).
   */
  readonly _id: string;
  /** The event id, as the API answered it. */
  readonly id: string;
  readonly userId: string;
  readonly eventType: string;
  readonly timestamp: Date;
  readonly payload: Readonly<Record<string, unknown>>;
  /** As QueueMessage.source: which write key's holder sent the event. */
  readonly source?: string;
  readonly receivedAt?: Date;
  readonly processedAt: Date;
}

/** One problem with one field of a rejected event. */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

/** RFC 9457 problem details, as every error answer carries them. */
export interface ProblemDetails {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  /** On a 503: the event's id. A retry with it is stored once, whether or not the broker has it. */
  readonly id?: string;
  /** On a 503 for a batch: every id of the batch, in request order. Retry the whole batch with them. */
  readonly ids?: readonly string[];
  readonly errors?: readonly FieldError[];
}

/** The 202 answer to an accepted event. */
export interface AcceptedResponse {
  readonly status: 'accepted';
  readonly id: string;
}

/** The 202 answer to an accepted batch: the event ids, in request order. */
export interface BatchAcceptedResponse {
  readonly status: 'accepted';
  readonly ids: readonly string[];
}

export type DependencyState = 'up' | 'down';

/** The body of `GET /health` on either service. */
export interface HealthReport {
  /** `ok` when every entry of `checks` is up; `info` never changes it. */
  readonly status: 'ok' | 'unavailable';
  readonly checks: Readonly<Record<string, DependencyState>>;
  /** Dependencies the service runs without, for information: the API's Redis with RATE_LIMIT_STORE=redis. */
  readonly info?: Readonly<Record<string, DependencyState>>;
}
