// Ingestion of one event or a batch, after routing and rate limiting: read body -> parse JSON ->
// validate -> publish -> 202. Any failure is thrown as an AppError and answered by the problem writer.
import { randomUUID } from 'node:crypto';
import { setImmediate as loopTurn } from 'node:timers/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AcceptedResponse, ActivityEvent, BatchAcceptedResponse, QueueMessage } from '@event-tracker/shared';
import type { Clock } from '@event-tracker/common/clock.ts';
import type { ApiMetrics } from '../apiMetrics.ts';
import { AppError, PublishOutcomeUnknown, QueueUnavailable } from '../errors.ts';
import { validateBatch } from '../validation.ts';
import type { Publisher } from '../publisher.ts';
import { parseBatch, parseJson, readBody, requireJson } from '../body.ts';
import { sendJson } from '../respond.ts';

/** A route's handler; `source` is the name of the request's write key, while WRITE_KEYS is set. */
export type Handler = (req: IncomingMessage, res: ServerResponse, source?: string) => Promise<void>;

export interface ActivityControllerDeps {
  readonly publisher: Publisher;
  readonly maxBodyBytes: number;
  readonly maxBatchBodyBytes: number;
  readonly batchMaxEvents: number;
  /** How long a client may take to send its body before the connection is closed. */
  readonly bodyTimeoutMs: number;
  readonly clock: Pick<Clock, 'now' | 'wall'>;
  readonly metrics: Pick<ApiMetrics, 'publishConfirmSeconds' | 'publishFailures'>;
}

/** A handler that accepts one event in the contract `validate` understands. */
export function activityController(deps: ActivityControllerDeps): (validate: (body: unknown) => ActivityEvent) => Handler {
  return (validate) => async (req, res, source) => {
    requireJson(req.headers['content-type']);
    const event = validate(parseJson(await readBody(req, deps.maxBodyBytes, deps.bodyTimeoutMs)));
    const message = toMessage(event, source);
    await timed(deps, (receivedAt) => deps.publisher.publish(message, receivedAt));
    const accepted: AcceptedResponse = { status: 'accepted', id: message.id };
    sendJson(res, 202, accepted);
  };
}

const NOT_A_BATCH = 'The body must be a JSON object {"batch": [event, ...]}, each event within the limit of one posted alone.';

/**
 * `POST /api/v1/activities/batch`: every event its own message, 202 once all are confirmed. Each
 * event may be as large as one posted alone (MAX_BODY_BYTES), as Segment bounds each call of a batch.
 */
export function batchController(deps: ActivityControllerDeps): Handler {
  return async (req, res, source) => {
    requireJson(req.headers['content-type']);
    const bytes = await readBody(req, deps.maxBatchBodyBytes, deps.bodyTimeoutMs);
    const body = await parseBatch(bytes, { maxEventBytes: deps.maxBodyBytes, maxEnvelopeBytes: deps.maxBodyBytes, notABatch: NOT_A_BATCH });
    await betweenSteps();
    const events = validateBatch(body, deps.batchMaxEvents);
    await betweenSteps();
    const messages = events.map((event) => toMessage(event, source));
    await timed(deps, (receivedAt) => deps.publisher.publishAll(messages, receivedAt));
    const accepted: BatchAcceptedResponse = { status: 'accepted', ids: messages.map((message) => message.id) };
    sendJson(res, 202, accepted);
  };
}

/**
 * Lets the event loop turn between the steps of a batch (parse, check, publish), so that other
 * requests and the broker's heartbeats wait for the longest step of a MiB body, not for all of them
 * (BENCHMARKS.md, "Worst-case requests").
 */
export function betweenSteps(): Promise<void> {
  return loopTurn();
}

/** The message for a validated event: its id settled, and the write key's name when there is one. */
export function toMessage(event: ActivityEvent, source: string | undefined): QueueMessage {
  const message = { id: event.id ?? randomUUID(), userId: event.userId, eventType: event.eventType, timestamp: event.timestamp, payload: event.payload };
  return source === undefined ? message : { ...message, source };
}

/**
 * Publishes at the receive time (the wall clock's now, unless the caller already read it), timing
 * the outcome and counting failures by reason.
 */
export async function timed(deps: ActivityControllerDeps, publish: (receivedAt: Date) => Promise<void>, receivedAt = new Date(deps.clock.wall())): Promise<void> {
  const { clock, metrics } = deps;
  const started = clock.now();
  try {
    await publish(receivedAt);
  } catch (error) {
    const failure = error instanceof AppError && !(error instanceof QueueUnavailable || error instanceof PublishOutcomeUnknown) ? error.cause : error;
    if (failure instanceof QueueUnavailable || failure instanceof PublishOutcomeUnknown) metrics.publishFailures.inc({ reason: failure.reason });
    throw error;
  } finally {
    // Failures and timeouts included: a confirm latency of successes only hides a slow broker.
    metrics.publishConfirmSeconds.observe((clock.now() - started) / 1000);
  }
}
