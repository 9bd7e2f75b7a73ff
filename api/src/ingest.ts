// The one ingestion pipeline, which every ingestion route configures (controllers/): read the body
// -> turn it into events -> publish each as its queue message, timed -> answer once the broker
// confirmed them all. Any failure is thrown as an AppError and answered by the problem writer.
import { randomUUID } from 'node:crypto';
import { setImmediate as loopTurn } from 'node:timers/promises';
import type { ActivityEvent, QueueMessage } from '@event-tracker/shared';
import type { Clock } from '@event-tracker/common/clock.ts';
import type { ApiMetrics } from './apiMetrics.ts';
import { readBody, requireJson } from './body.ts';
import { PublishFailed } from './errors.ts';
import { sendJson, type Handler } from './http.ts';
import type { Publisher } from './publisher.ts';

/** What the pipeline needs to read, publish and account for a request. */
export interface IngestDeps {
  readonly publisher: Publisher;
  readonly clock: Pick<Clock, 'now' | 'wall'>;
  readonly metrics: Pick<ApiMetrics, 'publishConfirmSeconds' | 'publishFailures'>;
  /** How long a client may take to send its body before the connection is closed. */
  readonly bodyTimeoutMs: number;
}

/** What a route decides of the pipeline. */
export interface Ingestion {
  /** The most bytes the body may have, decompressed. */
  readonly maxBytes: number;
  /** Whether the Content-Type must name JSON (body.ts requireJson), or the body is read as JSON whatever it says. */
  readonly jsonOnly: boolean;
  /**
   * How the body becomes events, `receivedAt` being when it was read: one event, or a batch's,
   * which comes as a promise because the loop turns between its steps (betweenSteps).
   */
  readonly toEvents: (body: Buffer, receivedAt: Date) => ActivityEvent | Promise<ActivityEvent[]>;
  /** The answer once every message is confirmed, given their ids in the body's order. */
  readonly answer: (ids: string[]) => { readonly status: 200 | 202; readonly body: unknown };
}

export function ingest(deps: IngestDeps, route: Ingestion): Handler {
  return async (req, res, source) => {
    if (route.jsonOnly) requireJson(req.headers['content-type']);
    const body = await readBody(req, route.maxBytes, deps.bodyTimeoutMs);
    const receivedAt = new Date(deps.clock.wall());
    const events = route.toEvents(body, receivedAt);
    let ids: string[];
    if (events instanceof Promise) {
      const messages = (await events).map((event) => toMessage(event, source));
      await timed(deps, deps.publisher.publishAll(messages, receivedAt));
      ids = messages.map((message) => message.id);
    } else {
      const message = toMessage(events, source);
      await timed(deps, deps.publisher.publish(message, receivedAt));
      ids = [message.id];
    }
    const { status, body: answer } = route.answer(ids);
    sendJson(res, status, answer);
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
function toMessage(event: ActivityEvent, source: string | undefined): QueueMessage {
  const message = { id: event.id ?? randomUUID(), userId: event.userId, eventType: event.eventType, timestamp: event.timestamp, payload: event.payload };
  return source === undefined ? message : { ...message, source };
}

/**
 * Waits for a publish just started, timing its outcome and counting failures by reason. A plain
 * promise chain rather than an async function: one promise less per request (BENCHMARKS.md section 0).
 */
function timed(deps: Pick<IngestDeps, 'clock' | 'metrics'>, published: Promise<void>): Promise<void> {
  const { clock, metrics } = deps;
  const started = clock.now();
  // Failures and timeouts included: a confirm latency of successes only hides a slow broker.
  const observe = () => metrics.publishConfirmSeconds.observe((clock.now() - started) / 1000);
  return published.then(observe, (error: unknown) => {
    observe();
    if (error instanceof PublishFailed) metrics.publishFailures.inc({ reason: error.reason });
    throw error;
  });
}
