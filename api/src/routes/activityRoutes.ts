// The route table: path -> method -> handler. An unknown path is 404; a known path with another
// method is 405 with Allow.
import type { ActivityControllerDeps, Handler } from '../controllers/activityController.ts';
import type { Registry } from '@event-tracker/common/metrics.ts';
import { activityController } from '../controllers/activityController.ts';
import { live, metrics, openApi, ready } from '../controllers/statusController.ts';
import { LIVE_PATH, READY_PATHS } from '@event-tracker/common/health.ts';
import { MethodNotAllowed, NotFound } from '../errors.ts';
import { validateActivity, validateLegacyTrack } from '../validation.ts';

export type RouteTable = ReadonlyMap<string, ReadonlyMap<string, Handler>>;

export function activityRoutes(deps: ActivityControllerDeps & { readonly registry: Registry }): RouteTable {
  const track = activityController(deps);
  return new Map([
    ['/api/v1/activities', new Map([['POST', track(validateActivity)]])],
    ['/api/v1/events/track', new Map([['POST', track(validateLegacyTrack)]])],
    [LIVE_PATH, new Map([['GET', live()]])],
    ...READY_PATHS.map((path) => [path, new Map([['GET', ready(deps.publisher)]])] as const),
    ['/metrics', new Map([['GET', metrics(deps.registry)]])],
    ['/openapi.json', new Map([['GET', openApi()]])],
  ]);
}

export function resolveRoute(routes: RouteTable, path: string, method: string | undefined): Handler {
  const handlers = routes.get(path);
  if (handlers === undefined) throw new NotFound();
  const handler = handlers.get(method ?? '');
  if (handler === undefined) throw new MethodNotAllowed([...handlers.keys()]);
  return handler;
}
