// Entry point: the only file that reads process.env, connects, listens and handles signals.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApiMetrics } from './apiMetrics.ts';
import { createApp } from './app.ts';
import { connectBroker } from './brokerConnection.ts';
import { ConfigError, loadConfig, startupWarnings } from './config.ts';
import type { Config } from './config.ts';
import { systemClock } from '@event-tracker/common/clock.ts';
import { createLogger } from '@event-tracker/common/logger.ts';
import { startLimiting } from './rateLimit/startLimiting.ts';
import { LoadShedder } from './overload.ts';
import { ConfirmPublisher } from './publisher.ts';
import { shutDown } from './shutdown.ts';

let config: Config;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  const logger = createLogger({ service: 'api' });
  for (const problem of error.problems) logger.fatal(`invalid configuration: ${problem}`);
  process.exit(1);
}

const logger = createLogger({ service: 'api' }, { level: config.logLevel });
for (const warning of startupWarnings(config)) logger.warn(warning);
const metrics = createApiMetrics();
const publisher = new ConfirmPublisher({
  exchange: config.topology.exchange,
  partitions: config.topology.partitions,
  publishTimeoutMs: config.publishTimeoutMs,
  maxUnconfirmed: config.maxUnconfirmed,
});
// Windows and durations on the monotonic clock: stepping the wall clock moves no Retry-After.
// With RATE_LIMIT_STORE=redis, Redis is connected in the background too, and never waited for.
const { limiter, healthInfo, stop: stopLimiting } = startLimiting(config.rateLimit, { clock: systemClock, logger, metrics });
const shedder = new LoadShedder({ maxInFlight: config.maxInFlightRequests, maxEventLoopDelayMs: config.maxEventLoopDelayMs, now: systemClock.now });
const stopSampling = shedder.start();
const deps = { config, publisher, limiter, healthInfo, clock: systemClock, logger, metrics, shedder };
const server = createApp(deps);
// With OPS_PORT, the probes and /metrics on a port of their own, which stays open while traffic
// drains at shutdown (the exit closes it), so the orchestrator still sees the API alive.
const opsServer = config.ops === undefined ? undefined : createApp(deps, 'ops');
// Connects in the background: until the first session opens, readiness is 503 and ingestion
// answers 503 with Retry-After at once, so clients and probes get an answer during a broker outage.
const broker = connectBroker({
  nodes: config.brokerNodes,
  heartbeatSeconds: config.heartbeatSeconds,
  topology: config.topology,
  publisher,
  logger,
});

let stopping = false;
async function onSignal(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info('shutting down', { signal, timeoutMs: config.shutdownTimeoutMs });
  await shutDown(server, broker, config.shutdownTimeoutMs, logger);
  stopLimiting();
  stopSampling();
  logger.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', (signal) => void onSignal(signal));
process.on('SIGINT', (signal) => void onSignal(signal));

function listen(target: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve) => target.listen(port, host, () => resolve((target.address() as AddressInfo).port)));
}
// One line once both listen: it is the line that says where everything is.
void Promise.all([listen(server, config.port, config.host), opsServer && config.ops && listen(opsServer, config.ops.port, config.ops.host)]).then(([port, opsPort]) => {
  const ops = opsPort === undefined ? {} : { opsHost: config.ops?.host, opsPort };
  logger.info('listening', { host: config.host, port, ...ops });
});
