// The route table: one declaration per path, with its handlers by method and whether it is an
// ingestion route (rate limited, CORS, preflight, write key). An unknown path is 404; a known path
// with another method is 405 with Allow.
import type { Handler } from '../http.ts';
import type { Registry } from '@event-tracker/common/metrics.ts';
import { activityController, batchController } from '../controllers/activityController.ts';
import { segmentBatchController, segmentCallController, type SegmentControllerDeps } from '../controllers/segmentController.ts';
import { CALL_TYPES } from '../segment.ts';
import { live, metrics, openApi, ready } from '../controllers/statusController.ts';
import { LIVE_PATH, READY_PATHS, type HealthChecks } from '@event-tracker/common/health.ts';
import { MethodNotAllowed, NotFound } from '../errors.ts';
import { validateActivity, validateLegacyTrack } from '../validation.ts';

export interface Route {
  readonly methods: ReadonlyMap<string, Handler>;
  /**
   * Rate limited per client, CORS headers on every answer, OPTIONS answered as a preflight, and a
   * write key required while WRITE_KEYS is set.
   */
  readonly ingestion: boolean;
  /** For operators (the probes, /metrics): served on OPS_PORT, and only there, when it is set. */
  readonly ops: boolean;
}

export type RouteTable = ReadonlyMap<string, Route>;

/** `healthInfo`: dependencies readiness reports without depending on them (app.ts AppDeps). */
export function activityRoutes(deps: SegmentControllerDeps & { readonly registry: Registry; readonly healthInfo?: HealthChecks }): RouteTable {
  const track = activityController(deps);
  const ingest = (handler: Handler): Route => ({ methods: new Map([['POST', handler]]), ingestion: true, ops: false });
  const get = (handler: Handler, ops = false): Route => ({ methods: new Map([['GET', handler]]), ingestion: false, ops });
  return new Map([
    ['/api/v1/activities', ingest(track(validateActivity))],
    ['/api/v1/activities/batch', ingest(batchController(deps))],
    ['/api/v1/events/track', ingest(track(validateLegacyTrack))],
    // The Segment tracking API, where the Segment and RudderStack SDKs post (segment.ts).
    ['/v1/batch', ingest(segmentBatchController(deps))],
    ...CALL_TYPES.map((type) => [`/v1/${type}`, ingest(segmentCallController(deps, type))] as const),
    [LIVE_PATH, get(live(), true)],
    ...READY_PATHS.map((path) => [path, get(ready(deps.publisher, deps.healthInfo), true)] as const),
    ['/metrics', get(metrics(deps.registry), true)],
    ['/openapi.json', get(openApi())],
  ]);
}

/** The methods a route answers: an ingestion route's preflight included. */
export function allowedMethods(route: Route): string[] {
  return route.ingestion ? [...route.methods.keys(), 'OPTIONS'] : [...route.methods.keys()];
}

export function resolveRoute(route: Route | undefined, method: string | undefined): Handler {
  if (route === undefined) throw new NotFound();
  const handler = route.methods.get(method ?? '');
  if (handler === undefined) throw new MethodNotAllowed(allowedMethods(route));
  return handler;
}
