// The route table: one declaration per path, with its handlers by method and its policy stated
// beside it (rate limited or not, write key or not, an ingestion route or not, for operators or not).
// An unknown path is 404; a known path with another method is 405 with Allow.
import type { Handler } from './http.ts';
import type { Registry } from '@event-tracker/common/metrics.ts';
import { activityIngestion, batchIngestion, type ActivityLimits } from './controllers/activityController.ts';
import { segmentBatchIngestion, segmentCallIngestion, type SegmentLimits } from './controllers/segmentController.ts';
import { ingest, type IngestDeps, type Ingestion } from './ingest.ts';
import { CALL_TYPES } from './segment.ts';
import { live, metrics, openApi, ready } from './controllers/statusController.ts';
import { LIVE_PATH, READY_PATHS, type HealthChecks } from '@event-tracker/common/health.ts';
import { MethodNotAllowed, NotFound } from './errors.ts';
import { validateActivity, validateLegacyTrack } from './validation.ts';

/** What a route asks of the steps before its handler (app.ts). */
export interface RoutePolicy {
  /** Counted against the client's rate limit, before the write key and the body. */
  readonly rateLimited: boolean;
  /** A write key required while WRITE_KEYS is set. */
  readonly writeKey: boolean;
  /**
   * Accepts events: CORS headers on every answer, OPTIONS answered as a preflight, shed under
   * overload, and counted in flight until answered.
   */
  readonly ingestion: boolean;
  /** For operators (the probes, /metrics): served on OPS_PORT, and only there, when it is set. */
  readonly ops: boolean;
}

export interface Route extends RoutePolicy {
  readonly methods: ReadonlyMap<string, Handler>;
}

export type RouteTable = ReadonlyMap<string, Route>;

/** Where events come in: everything is asked of the client. */
const INGESTION: RoutePolicy = { rateLimited: true, writeKey: true, ingestion: true, ops: false };
/** Probes and /metrics: never limited, never a key, so an orchestrator or scraper is never refused. */
const OPERATORS: RoutePolicy = { rateLimited: false, writeKey: false, ingestion: false, ops: true };
/** Read by anyone, as often as they like: the OpenAPI document. */
const PUBLIC: RoutePolicy = { rateLimited: false, writeKey: false, ingestion: false, ops: false };

/** An unknown path under /api/ still spends the client's budget, so that probing for routes is limited. */
const LIMITED_PREFIX = '/api/';

/** `healthInfo`: dependencies readiness reports without depending on them (app.ts AppDeps). */
export type RouteDeps = IngestDeps & ActivityLimits & SegmentLimits & { readonly registry: Registry; readonly healthInfo?: HealthChecks };

export function routeTable(deps: RouteDeps): RouteTable {
  const post = (handler: Handler, policy: RoutePolicy): Route => ({ methods: new Map([['POST', handler]]), ...policy });
  const get = (handler: Handler, policy: RoutePolicy): Route => ({ methods: new Map([['GET', handler]]), ...policy });
  // Every ingestion route is the one pipeline (ingest.ts), configured by its controller.
  const ingestion = (route: Ingestion): Route => post(ingest(deps, route), INGESTION);
  return new Map([
    ['/api/v1/activities', ingestion(activityIngestion(deps, validateActivity))],
    ['/api/v1/activities/batch', ingestion(batchIngestion(deps))],
    ['/api/v1/events/track', ingestion(activityIngestion(deps, validateLegacyTrack))],
    // The Segment tracking API, where the Segment and RudderStack SDKs post (segment.ts).
    ['/v1/batch', ingestion(segmentBatchIngestion(deps))],
    ...CALL_TYPES.map((type) => [`/v1/${type}`, ingestion(segmentCallIngestion(deps, type))] as const),
    [LIVE_PATH, get(live(), OPERATORS)],
    ...READY_PATHS.map((path) => [path, get(ready(deps.publisher, deps.healthInfo), OPERATORS)] as const),
    ['/metrics', get(metrics(deps.registry), OPERATORS)],
    ['/openapi.json', get(openApi(), PUBLIC)],
  ]);
}

/** Whether a request to `path` is counted against the rate limit: its route's policy, or, unrouted, its prefix. */
export function isRateLimited(route: Route | undefined, path: string): boolean {
  return route === undefined ? path.startsWith(LIMITED_PREFIX) : route.rateLimited;
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
