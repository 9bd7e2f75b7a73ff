// Health, metrics and the OpenAPI document: for orchestrators, Prometheus and client authors,
// never rate limited.
import { readFileSync } from 'node:fs';
import { LIVE, readiness, type HealthChecks } from '@event-tracker/common/health.ts';
import type { Registry } from '@event-tracker/common/metrics.ts';
import type { Publisher } from '../publisher.ts';
import { PROMETHEUS_CONTENT_TYPE } from '@event-tracker/common/metrics.ts';
import { JSON_CONTENT_TYPE, send, sendJson, type Handler } from '../http.ts';

/** Liveness: 200 while the process answers at all, whatever RabbitMQ is doing. */
export function live(): Handler {
  return async (_req, res) => sendJson(res, 200, LIVE);
}

/**
 * Readiness: 200 while events can be published, 503 otherwise, with the same body shape either way.
 * `info` (Redis, with the shared rate limit) is reported and never makes it 503: without it the
 * API still ingests, limiting per replica.
 */
export function ready(publisher: Publisher, info: HealthChecks = {}): Handler {
  return async (_req, res) => {
    const report = await readiness({ rabbitmq: () => publisher.isReady() }, info);
    sendJson(res, report.status === 'ok' ? 200 : 503, report);
  };
}

export function metrics(registry: Registry): Handler {
  return async (_req, res) => send(res, 200, PROMETHEUS_CONTENT_TYPE, registry.render());
}

// api/openapi.json, read and parsed once at start-up, so a broken file stops the API at once, and
// kept as the bytes every answer sends: a request costs no serialising. Resolved from this module,
// not the working directory: found the same way under tsx, Node's type stripping, Bun and in the
// image (api/Dockerfile copies it).
const OPENAPI_BYTES = Buffer.from(JSON.stringify(JSON.parse(readFileSync(new URL('../../openapi.json', import.meta.url), 'utf8'))));

export function openApi(): Handler {
  return async (_req, res) => send(res, 200, JSON_CONTENT_TYPE, OPENAPI_BYTES);
}
