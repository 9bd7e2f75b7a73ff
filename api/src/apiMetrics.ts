// The API's Prometheus metrics, registered once and handed to the app.
import { Counter, Gauge, Histogram, Registry } from '@event-tracker/common/metrics.ts';

export interface ApiMetrics {
  readonly registry: Registry;
  /** Labels: route (the route path, or "unmatched"), status. */
  readonly requests: Counter;
  readonly rateLimited: Counter;
  readonly publishConfirmSeconds: Histogram;
  /** 1 while the broker channel is usable, else 0. */
  readonly brokerUp: Gauge;
  readonly limiterKeys: Gauge;
}

export function createApiMetrics(): ApiMetrics {
  const registry = new Registry();
  return {
    registry,
    requests: registry.add(new Counter('api_http_requests_total', 'HTTP requests answered, by route and status.')),
    rateLimited: registry.add(new Counter('api_rate_limited_requests_total', 'Requests answered 429 by the rate limiter.')),
    publishConfirmSeconds: registry.add(
      new Histogram('api_publish_confirm_seconds', 'Time from publishing an event to the broker confirm.', [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
      ]),
    ),
    brokerUp: registry.add(new Gauge('api_broker_connection_up', '1 while the RabbitMQ channel is usable, 0 otherwise.')),
    limiterKeys: registry.add(new Gauge('api_rate_limiter_keys', 'Clients tracked by the rate limiter.')),
  };
}
