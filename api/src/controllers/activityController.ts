// Ingestion of one event or a batch, after routing and rate limiting: read body -> parse JSON ->
// validate -> publish -> 202. Any failure is thrown as an AppError and answered by the problem writer.
import type { AcceptedResponse, ActivityEvent, BatchAcceptedResponse } from '@event-tracker/shared';
import { validateBatch } from '../validation.ts';
import { parseBatch, parseJson, readBody, requireJson } from '../body.ts';
import { sendJson, type Handler } from '../http.ts';
import { betweenSteps, timed, toMessage, type IngestDeps } from '../ingest.ts';

export interface ActivityControllerDeps extends IngestDeps {
  readonly maxBodyBytes: number;
  readonly maxBatchBodyBytes: number;
  readonly batchMaxEvents: number;
  /** How long a client may take to send its body before the connection is closed. */
  readonly bodyTimeoutMs: number;
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
