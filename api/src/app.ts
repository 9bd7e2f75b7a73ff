// Builds the HTTP server from its dependencies without listening, so tests start it on port 0.
// Per connection: the per-client cap, before anything reads it. Per request: route lookup -> CORS
// (ingestion routes; a preflight ends here) -> load shedding (ingestion routes) -> rate limit and
// write key (as the route's policy says, routes.ts) -> handler (an ingestion request counts as in
// flight until answered); errors go to the problem writer.
import { createServer } from 'node:http';
import type { RequestListener, Server, ServerOptions } from 'node:http';
import type { ApiMetrics } from './apiMetrics.ts';
import type { Clock } from '@event-tracker/common/clock.ts';
import type { Config } from './config.ts';
import type { Logger } from '@event-tracker/common/logger.ts';
import type { Publisher } from './publisher.ts';
import type { RateLimiter } from './rateLimit/types.ts';
import type { HealthChecks } from '@event-tracker/common/health.ts';
import { RequestAborted } from './body.ts';
import { clientAddress, clientKey, isTrustedProxy } from './clientKey.ts';
import { limitConnectionsPerClient } from './connectionLimit.ts';
import { Overloaded } from './errors.ts';
import type { LoadShedder } from './overload.ts';
import { enforceRateLimit } from './middlewares/rateLimiter.ts';
import { writeProblem } from './problem.ts';
import { addHeaders } from './http.ts';
import { requestPath } from '@event-tracker/common/requestPath.ts';
import { allowedMethods, isRateLimited, resolveRoute, routeTable, type RouteDeps, type RouteTable } from './routes.ts';
import { answerPreflight, applyCors } from './middlewares/cors.ts';
import { authenticate } from './middlewares/writeKey.ts';

export interface AppDeps {
  readonly config: Config;
  readonly publisher: Publisher;
  readonly limiter: RateLimiter;
  /** Reported by readiness without deciding it: Redis, when the rate limit is shared through it. */
  readonly healthInfo?: HealthChecks;
  /** Monotonic time for durations, the wall clock for receive times (tests step either). */
  readonly clock: Pick<Clock, 'now' | 'wall'>;
  readonly logger: Logger;
  readonly metrics: ApiMetrics;
  /** Started (sampling the event loop) by whoever runs the server; tests sample it by hand. */
  readonly shedder: LoadShedder;
}

/**
 * Which routes a server answers: all of them (OPS_PORT unset), or, with OPS_PORT, the traffic's on
 * API_PORT and the operators' (probes, /metrics) on OPS_PORT. Elsewhere a route is 404, like any unknown path.
 */
export type Audience = 'all' | 'traffic' | 'ops';

function servedTo(routes: RouteTable, audience: Audience): RouteTable {
  if (audience === 'all') return routes;
  return new Map([...routes].filter(([, route]) => route.ops === (audience === 'ops')));
}

/** nginx's "client closed request", for the log and metrics of an answer nobody received. */
const CLIENT_CLOSED = 499;

export function createApp(deps: AppDeps, audience: Audience = deps.config.ops === undefined ? 'all' : 'traffic'): Server {
  const routes = servedTo(routeTable(routeDeps(deps)), audience);
  trackGauges(deps);
  const server: Server = createServer(serverOptions(deps.config), requestHandler(deps, routes, () => server.listening));
  capConnections(server, deps);
  return server;
}

/** What the route table's controllers need, from the app's dependencies. */
function routeDeps({ config, publisher, clock, metrics, healthInfo }: AppDeps): RouteDeps {
  return {
    publisher,
    maxBodyBytes: config.maxBodyBytes,
    maxBatchBodyBytes: config.maxBatchBodyBytes,
    batchMaxEvents: config.batchMaxEvents,
    segmentMaxCallBytes: config.segmentMaxCallBytes,
    segmentMaxBatchBytes: config.segmentMaxBatchBytes,
    bodyTimeoutMs: config.requestTimeoutMs,
    clock,
    metrics,
    registry: metrics.registry,
    healthInfo,
  };
}

/** The gauges read at scrape time from the parts that hold the state. */
function trackGauges({ publisher, limiter, metrics, shedder }: AppDeps): void {
  metrics.brokerUp.track(() => (publisher.isReady() ? 1 : 0));
  metrics.unconfirmed.track(() => publisher.unconfirmed);
  metrics.limiterKeys.track(() => limiter.size);
  metrics.limiterEvictions.track(() => limiter.evictions);
  metrics.inFlight.track(() => shedder.inFlight);
  metrics.eventLoopDelay.track(() => shedder.eventLoopDelayMs / 1000);
}

function serverOptions(config: Config): ServerOptions {
  return {
    // A slow client must not hold a socket (config caps these at 10 s and 30 s), checked every
    // second rather than Node's default 30 s.
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    // Longer than a load balancer's idle timeout (60 s on AWS ALB, GCP, nginx's keepalive_timeout
    // 75 s upstream aside), so the balancer, not the API, closes an idle kept-alive socket and
    // never sends a request down one the API is closing.
    keepAliveTimeout: config.keepAliveTimeoutMs,
    connectionsCheckingInterval: 1_000,
  };
}

/**
 * One request, through the steps of the header comment; `listening` is false once shutdown began.
 * The answer is logged and counted when the response closes, answered or not.
 */
function requestHandler(deps: AppDeps, routes: RouteTable, listening: () => boolean): RequestListener {
  const { config, limiter, clock, logger, metrics, shedder } = deps;
  return async (req, res) => {
    const started = clock.now();
    const path = requestPath(req.url);
    const route = routes.get(path);
    const routeLabel = route === undefined ? 'unmatched' : path;
    const forwardedFor = req.headers['x-forwarded-for'];
    const client = clientKey(clientAddress(req.socket.remoteAddress, typeof forwardedFor === 'string' ? forwardedFor : undefined, config.trustProxy), config.rateLimit.ipv6Prefix);

    // Set once the request counts as in flight (below); released with the answer, or when the client leaves.
    let leave: (() => void) | undefined;
    res.on('close', () => {
      leave?.();
      const status = res.writableFinished ? res.statusCode : CLIENT_CLOSED;
      metrics.requests.count(routeLabel, status);
      if (status === 429) metrics.rateLimited.inc();
      logger.info('request', { method: req.method, route: routeLabel, status, durationMs: Math.round(clock.now() - started), client });
    });

    // A request on a kept-alive socket after shutdown began: tell the client not to reuse it.
    if (!listening()) addHeaders(res, { Connection: 'close' });
    try {
      if (route?.ingestion === true) {
        const origin = req.headers.origin;
        applyCors(config.cors, origin, res);
        // A preflight is the browser asking, not the client sending: never counted.
        if (req.method === 'OPTIONS') return answerPreflight(res, allowedMethods(route));
        // Before the rate limit: a shed request costs no limiter (or Redis) work and no budget.
        const shed = shedder.check();
        if (shed !== undefined) {
          metrics.shed.inc({ reason: shed });
          throw new Overloaded();
        }
      }
      if (isRateLimited(route, path)) {
        // The in-process store decides at once: no await, so no microtask, for it.
        const limited = enforceRateLimit(limiter, client, res);
        if (limited !== undefined) await limited;
      }
      const handler = resolveRoute(route, req.method);
      // After the rate limit, so that guessing keys spends the guesser's budget; before the body.
      const source = route?.writeKey === true && config.writeKeys !== undefined ? authenticate(config.writeKeys, req) : undefined;
      // In flight from here, where the work (body, validation, publish) starts, until answered or abandoned.
      if (route?.ingestion === true) leave = shedder.enter();
      await handler(req, res, source);
    } catch (error) {
      if (error instanceof RequestAborted) return;
      writeProblem(res, error, logger);
    }
  };
}

/** The bounds on connections: in all, and per client (a trusted proxy's are not capped). */
function capConnections(server: Server, { config, metrics }: AppDeps): void {
  // Beyond it, new connections are closed at once by the server (Node and Bun): a bound on sockets
  // and their buffers, whatever clients do.
  server.maxConnections = config.maxConnections;
  const { trustProxy, maxConnectionsPerClient } = config;
  limitConnectionsPerClient(server, {
    maxPerClient: maxConnectionsPerClient,
    keyOf: (address) => (isTrustedProxy(address, trustProxy) ? undefined : clientKey(address, config.rateLimit.ipv6Prefix)),
    onRefused: () => metrics.connectionsRefused.inc(),
  });
}
