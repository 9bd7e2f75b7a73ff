// The probes (GET /health/live, /health/ready and its older name /health; common/src/health.ts)
// and GET /metrics on a plain node:http server. Built here, not listening: the worker (or a test)
// listens, so the routes are testable without the rest of the consumer.
import { createServer, type Server, type ServerResponse } from 'node:http';
import { LIVE, LIVE_PATH, READY_PATHS, readiness } from '@event-tracker/common/health.ts';
import type { Logger } from '@event-tracker/common/logger.ts';
import { requestPath } from '@event-tracker/common/requestPath.ts';
import { PROMETHEUS_CONTENT_TYPE, type Registry } from '@event-tracker/common/metrics.ts';

export type HealthChecks = {
  /** The broker channel is open. */
  readonly rabbitmq: () => boolean;
  /** The database answers a ping and takes writes. */
  readonly mongodb: () => Promise<boolean>;
};

export interface HealthServerOptions {
  readonly checks: HealthChecks;
  readonly registry: Registry;
  readonly logger: Logger;
}

const JSON_TYPE = 'application/json';
const TEXT_TYPE = 'text/plain; charset=utf-8';

export function createHealthServer({ checks, registry, logger }: HealthServerOptions): Server {
  return createServer((request, response) => {
    const path = requestPath(request.url);
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, 405, TEXT_TYPE, 'method not allowed\n', { allow: 'GET, HEAD' });
    if (path === '/metrics') return send(response, 200, PROMETHEUS_CONTENT_TYPE, registry.render());
    if (path === LIVE_PATH) return send(response, 200, JSON_TYPE, JSON.stringify(LIVE));
    if (!(READY_PATHS as readonly string[]).includes(path)) return send(response, 404, TEXT_TYPE, 'not found\n');
    readiness(checks).then(
      (report) => send(response, report.status === 'ok' ? 200 : 503, JSON_TYPE, JSON.stringify(report)),
      (err: unknown) => {
        logger.error('health check failed', { err });
        send(response, 500, TEXT_TYPE, 'internal error\n');
      },
    );
  });
}

function send(response: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', ...headers });
  response.end(body);
}
