// Ingestion of one event, after routing and rate limiting: read body -> parse JSON -> validate ->
// publish -> 202. Any failure is thrown as an AppError and answered by the problem writer.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AcceptedResponse, ActivityEvent, QueueMessage } from '@event-tracker/shared';
import type { Clock } from '@event-tracker/common/clock.ts';
import type { ApiMetrics } from '../apiMetrics.ts';
import { PublishOutcomeUnknown, QueueUnavailable } from '../errors.ts';
import type { Publisher } from '../publisher.ts';
import { parseJson, readBody, requireJson } from '../body.ts';
import { sendJson } from '../respond.ts';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface ActivityControllerDeps {
  readonly publisher: Publisher;
  readonly maxBodyBytes: number;
  /** How long a client may take to send its body before the connection is closed. */
  readonly bodyTimeoutMs: number;
  readonly clock: Pick<Clock, 'now' | 'wall'>;
  readonly metrics: Pick<ApiMetrics, 'publishConfirmSeconds' | 'publishFailures'>;
}

/** A handler that accepts events in the contract `validate` understands. */
export function activityController(deps: ActivityControllerDeps): (validate: (body: unknown) => ActivityEvent) => Handler {
  return (validate) => async (req, res) => {
    requireJson(req.headers['content-type']);
    const event = validate(parseJson(await readBody(req, deps.maxBodyBytes, deps.bodyTimeoutMs)));

    const { clock, metrics } = deps;
    const message: QueueMessage = {
      id: event.id ?? randomUUID(),
      userId: event.userId,
      eventType: event.eventType,
      timestamp: event.timestamp,
      payload: event.payload,
    };
    const started = clock.now();
    try {
      await deps.publisher.publish(message, new Date(clock.wall()));
    } catch (error) {
      if (error instanceof QueueUnavailable || error instanceof PublishOutcomeUnknown) metrics.publishFailures.inc({ reason: error.reason });
      throw error;
    } finally {
      // Failures and timeouts included: a confirm latency of successes only hides a slow broker.
      metrics.publishConfirmSeconds.observe((clock.now() - started) / 1000);
    }

    const accepted: AcceptedResponse = { status: 'accepted', id: message.id };
    sendJson(res, 202, accepted);
  };
}
