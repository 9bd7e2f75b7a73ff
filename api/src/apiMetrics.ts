// The API's Prometheus metrics, registered once and handed to the app.
import { Counter, Gauge, Histogram, Registry, labelText } from '@event-tracker/common/metrics.ts';

/**
 * A counter whose total another object keeps (the limiter counts its own evictions, and stays free
 * of metrics): read when metrics are rendered, like a Gauge, but exposed with counter semantics.
 */
export class TrackedCounter {
  readonly name: string;
  readonly help: string;
  #read: () => number = () => 0;
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  track(read: () => number): void {
    this.#read = read;
  }

  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`, `${this.name} ${this.#read()}`];
  }
}

/**
 * HTTP answers by route and status: the one counter every request passes through. Kept as counts
 * by route, then status, so counting builds no label object or text per request (BENCHMARKS.md
 * section 0); rendered as any labelled counter is.
 */
export class AnswerCounter {
  readonly name: string;
  readonly help: string;
  readonly #counts = new Map<string, Map<number, number>>();
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  count(route: string, status: number): void {
    let byStatus = this.#counts.get(route);
    if (byStatus === undefined) this.#counts.set(route, (byStatus = new Map()));
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [route, byStatus] of this.#counts) {
      for (const [status, count] of byStatus) lines.push(`${this.name}${labelText({ route, status: String(status) })} ${count}`);
    }
    return lines;
  }
}

export interface ApiMetrics {
  readonly registry: Registry;
  /** Labels: route (the route path, or "unmatched"), status. */
  readonly requests: AnswerCounter;
  readonly rateLimited: Counter;
  readonly publishConfirmSeconds: Histogram;
  /** Labels: reason (errors.ts PublishFailure). */
  readonly publishFailures: Counter;
  readonly unconfirmed: Gauge;
  /** 1 while the broker channel is usable, else 0. */
  readonly brokerUp: Gauge;
  readonly limiterKeys: Gauge;
  readonly limiterEvictions: TrackedCounter;
  /** RATE_LIMIT_STORE=redis. Labels: reason (redisLimiter.ts FallbackReason). */
  readonly rateLimitFallbacks: Counter;
  readonly rateLimitRedisUp: Gauge;
  readonly rateLimitRedisSeconds: Histogram;
  /** Labels: reason (overload.ts ShedReason). */
  readonly shed: Counter;
  readonly inFlight: Gauge;
  readonly eventLoopDelay: Gauge;
  readonly connectionsRefused: Counter;
}

export function createApiMetrics(): ApiMetrics {
  const registry = new Registry();
  return {
    registry,
    requests: registry.add(new AnswerCounter('api_http_requests_total', 'HTTP requests answered, by route and status.')),
    rateLimited: registry.add(new Counter('api_rate_limited_requests_total', 'Requests answered 429 by the rate limiter.')),
    publishConfirmSeconds: registry.add(
      new Histogram('api_publish_confirm_seconds', 'Time from publishing an event to its outcome: the confirm, a refusal or the timeout.', [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
      ]),
    ),
    publishFailures: registry.add(new Counter('api_publish_failures_total', 'Publishes answered 503, by reason: not-connected, blocked, over-capacity, no-room, channel-closing, nacked, returned, confirm-timeout, connection-lost.')),
    unconfirmed: registry.add(new Gauge('api_publish_unconfirmed', 'Events published and not yet confirmed by the broker (bounded by MAX_UNCONFIRMED).')),
    brokerUp: registry.add(new Gauge('api_broker_connection_up', '1 while the RabbitMQ channel is usable, 0 otherwise.')),
    limiterKeys: registry.add(new Gauge('api_rate_limiter_keys', 'Clients tracked by the rate limiter.')),
    limiterEvictions: registry.add(
      new TrackedCounter('api_rate_limiter_evictions_total', 'Clients the rate limiter forgot while still inside their window (RATE_LIMIT_MAX_KEYS reached).'),
    ),
    rateLimitFallbacks: registry.add(
      new Counter('api_rate_limit_fallbacks_total', 'Requests the in-process limiter decided because Redis could not, by reason: unreachable, error, timeout, probing (RATE_LIMIT_STORE=redis).'),
    ),
    rateLimitRedisUp: registry.add(new Gauge('api_rate_limit_redis_up', '1 while Redis answers the rate-limit script in time, 0 while requests fall back (RATE_LIMIT_STORE=redis).')),
    rateLimitRedisSeconds: registry.add(
      new Histogram('api_rate_limit_redis_seconds', 'Round trip of the rate-limit script, answers after the timeout included (RATE_LIMIT_STORE=redis).', [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
      ]),
    ),
    shed: registry.add(new Counter('api_shed_requests_total', 'Ingestion requests answered 503 before any work because the API was overloaded, by reason: event-loop-delay, in-flight.')),
    inFlight: registry.add(new Gauge('api_in_flight_requests', 'Ingestion requests being handled (shed beyond MAX_IN_FLIGHT_REQUESTS).')),
    eventLoopDelay: registry.add(new Gauge('api_event_loop_delay_seconds', 'How late the event loop ran at its last sample (shed from MAX_EVENT_LOOP_DELAY_MS).')),
    connectionsRefused: registry.add(new Counter('api_connections_refused_total', 'Connections closed on arrival because their address already held MAX_CONNECTIONS_PER_CLIENT.')),
  };
}
