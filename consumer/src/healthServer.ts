// GET /health and GET /metrics on a plain node:http server. Built here, not listening: the worker
// (or a test) listens, so the routes are testable without the rest of the consumer.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { DependencyState, HealthReport } from '@event-tracker/shared';
import type { Logger } from '@event-tracker/common/logger.ts';
import { requestPath } from '@event-tracker/common/requestPath.ts';
import { PROMETHEUS_CONTENT_TYPE, type Registry } from '@event-tracker/common/metrics.ts';

export interface HealthChecks {
  /** The broker channel is open. */
  readonly rabbitmq: () => boolean;
  /** The database answers a ping and takes writes. */
  readonly mongodb: () => Promise<boolean>;
}

export interface HealthServerOptions {
  readonly checks: HealthChecks;
  readonly registry: Registry;
  readonly logger: Logger;
}

export function createHealthServer({ checks, registry, logger }: HealthServerOptions): Server {
  return createServer((request, response) => {
    const path = requestPath(request.url);
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
    if (path === '/metrics') return send(response, 200, PROMETHEUS_CONTENT_TYPE, registry.render());
    if (path !== '/health') return send(response, 404, 'text/plain; charset=utf-8', 'not found\n');
    healthReport(checks).then(
      (report) => send(response, report.status === 'ok' ? 200 : 503, 'application/json', JSON.stringify(report)),
      (err: unknown) => {
        logger.error('health check failed', { err });
        send(response, 500, 'text/plain; charset=utf-8', 'internal error\n');
      },
    );
  });
}

export async function healthReport(checks: HealthChecks): Promise<HealthReport> {
  const state = (up: boolean): DependencyState => (up ? 'up' : 'down');
  const rabbitmq = state(checks.rabbitmq());
  const mongodb = state(await checks.mongodb());
  return { status: rabbitmq === 'up' && mongodb === 'up' ? 'ok' : 'unavailable', checks: { rabbitmq, mongodb } };
}

function send(response: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', ...headers });
  response.end(body);
}
