// The native routes' part of the ingestion pipeline (ingest.ts): a JSON Content-Type, the body read
// as the contract validation.ts checks, and 202 with the events' ids.
import type { AcceptedResponse, ActivityEvent, BatchAcceptedResponse } from '@event-tracker/shared';
import { parseBatch, parseJson } from '../body.ts';
import { betweenSteps, type Ingestion } from '../ingest.ts';
import { validateBatch } from '../validation.ts';

export interface ActivityLimits {
  readonly maxBodyBytes: number;
  readonly maxBatchBodyBytes: number;
  readonly batchMaxEvents: number;
}

/** One event, in the contract `validate` understands (the activity or the legacy track route). */
export function activityIngestion(limits: ActivityLimits, validate: (body: unknown) => ActivityEvent): Ingestion {
  return {
    maxBytes: limits.maxBodyBytes,
    jsonOnly: true,
    toEvents: (body) => validate(parseJson(body)),
    answer: ([id]) => ({ status: 202, body: { status: 'accepted', id: id! } satisfies AcceptedResponse }),
  };
}

const NOT_A_BATCH = 'The body must be a JSON object {"batch": [event, ...]}, each event within the limit of one posted alone.';

/**
 * `POST /api/v1/activities/batch`: every event its own message, 202 once all are confirmed. Each
 * event may be as large as one posted alone (MAX_BODY_BYTES), as Segment bounds each call of a batch.
 */
export function batchIngestion(limits: ActivityLimits): Ingestion {
  const bodyLimits = { maxEventBytes: limits.maxBodyBytes, maxEnvelopeBytes: limits.maxBodyBytes, notABatch: NOT_A_BATCH };
  return {
    maxBytes: limits.maxBatchBodyBytes,
    jsonOnly: true,
    toEvents: async (body) => {
      const batch = await parseBatch(body, bodyLimits);
      await betweenSteps();
      const events = validateBatch(batch, limits.batchMaxEvents);
      await betweenSteps();
      return events;
    },
    answer: (ids) => ({ status: 202, body: { status: 'accepted', ids } satisfies BatchAcceptedResponse }),
  };
}
