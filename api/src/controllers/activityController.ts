// Ingestion of one event, after routing and rate limiting: read body -> parse JSON -> validate ->
// publish -> 202. Any failure is thrown as an AppError and answered by the problem writer.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AcceptedResponse, ActivityEvent, QueueMessage } from '@event-tracker/shared';
import type { Histogram } from '@event-tracker/common/metrics.ts';
import type { Publisher } from '../publisher.ts';
import { parseJson, readBody, requireJson } from '../body.ts';
import { sendJson } from '../respond.ts';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface ActivityControllerDeps {
  readonly publisher: Publisher;
  readonly maxBodyBytes: number;
  /** How long a client may take to send its body before the connection is closed. */
  readonly bodyTimeoutMs: number;
  readonly now: () => number;
  readonly publishConfirmSeconds: Histogram;
}

/** A handler that accepts events in the contract `validate` understands. */
export function activityController(deps: ActivityControllerDeps): (validate: (body: unknown) => ActivityEvent) => Handler {
  return (validate) => async (req, res) => {
    requireJson(req.headers['content-type']);
    const event = validate(parseJson(await readBody(req, deps.maxBodyBytes, deps.bodyTimeoutMs)));

    const receivedAt = deps.now();
    const message: QueueMessage = {
      id: event.id ?? randomUUID(),
      userId: event.userId,
      eventType: event.eventType,
      timestamp: event.timestamp,
      payload: event.payload,
    };
    await deps.publisher.publish(message, new Date(receivedAt));
    deps.publishConfirmSeconds.observe((deps.now() - receivedAt) / 1000);

    const accepted: AcceptedResponse = { status: 'accepted', id: message.id };
    sendJson(res, 202, accepted);
  };
}
