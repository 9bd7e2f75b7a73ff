// The Segment tracking API's part of the ingestion pipeline (ingest.ts): each call mapped to an event
// (segment.ts), and 200 once the broker confirmed every call. The body is JSON whatever its
// Content-Type, as RudderStack's own gateway reads it: its Node SDK labels gzip JSON
// application/x-www-form-urlencoded.
import { parseBatch, parseJson } from '../body.ts';
import { betweenSteps, type Ingestion } from '../ingest.ts';
import { mapBatch, mapCall, type CallType } from '../segment.ts';

export interface SegmentLimits {
  /** A call posted alone, decompressed; and each call of a batch, as JSON. */
  readonly segmentMaxCallBytes: number;
  /** A batch body, decompressed. */
  readonly segmentMaxBatchBytes: number;
  readonly batchMaxEvents: number;
}

/** Segment's own answer; both SDKs count any 2xx as delivered. */
const SUCCESS = { status: 200, body: { success: true } } as const;

/** `POST /v1/<type>`: one call, of the route's type. */
export function segmentCallIngestion(limits: SegmentLimits, type: CallType): Ingestion {
  return {
    maxBytes: limits.segmentMaxCallBytes,
    jsonOnly: false,
    toEvents: (body, receivedAt) => mapCall(parseJson(body), type, receivedAt),
    answer: () => SUCCESS,
  };
}

const NOT_A_BATCH = 'The body must be a JSON object {"batch": [call, ...]}.';

/** `POST /v1/batch`: every call its own message, as on the native batch route. */
export function segmentBatchIngestion(limits: SegmentLimits): Ingestion {
  // A call's limit is on it as JSON (mapBatch); here only what bounds each parse.
  const bodyLimits = { maxEventBytes: limits.segmentMaxBatchBytes, maxEnvelopeBytes: limits.segmentMaxCallBytes, notABatch: NOT_A_BATCH };
  const batchLimits = { maxCallBytes: limits.segmentMaxCallBytes, maxCalls: limits.batchMaxEvents };
  return {
    maxBytes: limits.segmentMaxBatchBytes,
    jsonOnly: false,
    toEvents: async (body, receivedAt) => {
      const batch = await parseBatch(body, bodyLimits);
      await betweenSteps();
      const events = mapBatch(batch, batchLimits, receivedAt);
      await betweenSteps();
      return events;
    },
    answer: () => SUCCESS,
  };
}
