// The Segment tracking API (/v1/*), after routing, rate limiting and the write key: read body ->
// parse JSON -> map each call (segment.ts) -> publish -> 200 once the broker confirmed every call.
// The body is JSON whatever its Content-Type, as RudderStack's own gateway reads it: its Node SDK
// labels gzip JSON application/x-www-form-urlencoded.
import type { ActivityControllerDeps } from './activityController.ts';
import { parseBatch, parseJson, readBody } from '../body.ts';
import { sendJson, type Handler } from '../http.ts';
import { betweenSteps, timed, toMessage } from '../ingest.ts';
import { mapBatch, mapCall, type CallType } from '../segment.ts';

export interface SegmentControllerDeps extends ActivityControllerDeps {
  /** A call posted alone, decompressed; and each call of a batch, as JSON. */
  readonly segmentMaxCallBytes: number;
  /** A batch body, decompressed. */
  readonly segmentMaxBatchBytes: number;
}

/** Segment's own answer; both SDKs count any 2xx as delivered. */
const SUCCESS = { success: true } as const;

/** `POST /v1/<type>`: one call, of the route's type. */
export function segmentCallController(deps: SegmentControllerDeps, type: CallType): Handler {
  return async (req, res, source) => {
    const body = parseJson(await readBody(req, deps.segmentMaxCallBytes, deps.bodyTimeoutMs));
    const receivedAt = new Date(deps.clock.wall());
    const message = toMessage(mapCall(body, type, receivedAt), source);
    await timed(deps, (at) => deps.publisher.publish(message, at), receivedAt);
    sendJson(res, 200, SUCCESS);
  };
}

const NOT_A_BATCH = 'The body must be a JSON object {"batch": [call, ...]}.';

/** `POST /v1/batch`: every call its own message, as on the native batch route. */
export function segmentBatchController(deps: SegmentControllerDeps): Handler {
  return async (req, res, source) => {
    const bytes = await readBody(req, deps.segmentMaxBatchBytes, deps.bodyTimeoutMs);
    // A call's limit is on it as JSON (mapBatch); here only what bounds each parse.
    const body = await parseBatch(bytes, { maxEventBytes: deps.segmentMaxBatchBytes, maxEnvelopeBytes: deps.segmentMaxCallBytes, notABatch: NOT_A_BATCH });
    const receivedAt = new Date(deps.clock.wall());
    await betweenSteps();
    const events = mapBatch(body, { maxCallBytes: deps.segmentMaxCallBytes, maxCalls: deps.batchMaxEvents }, receivedAt);
    await betweenSteps();
    const messages = events.map((event) => toMessage(event, source));
    await timed(deps, (at) => deps.publisher.publishAll(messages, at), receivedAt);
    sendJson(res, 200, SUCCESS);
  };
}
