// The steps every ingestion handler shares, native and Segment alike: an event becomes its queue
// message, the loop turns between the steps of a batch, and the publish is timed and its failures counted.
import { randomUUID } from 'node:crypto';
import { setImmediate as loopTurn } from 'node:timers/promises';
import type { ActivityEvent, QueueMessage } from '@event-tracker/shared';
import type { Clock } from '@event-tracker/common/clock.ts';
import type { ApiMetrics } from './apiMetrics.ts';
import { PublishFailed } from './errors.ts';
import type { Publisher } from './publisher.ts';

/** What an ingestion handler needs to publish and account for it. */
export interface IngestDeps {
  readonly publisher: Publisher;
  readonly clock: Pick<Clock, 'now' | 'wall'>;
  readonly metrics: Pick<ApiMetrics, 'publishConfirmSeconds' | 'publishFailures'>;
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
export async function timed(deps: Pick<IngestDeps, 'clock' | 'metrics'>, publish: (receivedAt: Date) => Promise<void>, receivedAt = new Date(deps.clock.wall())): Promise<void> {
  const { clock, metrics } = deps;
  const started = clock.now();
  try {
    await publish(receivedAt);
  } catch (error) {
    if (error instanceof PublishFailed) metrics.publishFailures.inc({ reason: error.reason });
    throw error;
  } finally {
    // Failures and timeouts included: a confirm latency of successes only hides a slow broker.
    metrics.publishConfirmSeconds.observe((clock.now() - started) / 1000);
  }
}
