// Assembles the consumer from its parts: the batch writer in the middle, the broker feeding it and
// paused by it, the health server reporting on both. Nothing here reads the environment or signals.
import type { Server } from 'node:http';
import type { ActivityStore } from './activityStore.ts';
import { backoffDelay, type BackoffOptions } from '@event-tracker/common/backoff.ts';
import { Broker } from './broker.ts';
import { sleep, systemClock, type Clock } from '@event-tracker/common/clock.ts';
import type { Config } from './config.ts';
import { createConsumerMetrics, type ConsumerMetrics } from './consumerMetrics.ts';
import { createHealthServer } from './healthServer.ts';
import type { Logger } from '@event-tracker/common/logger.ts';
import { parseDelivery } from './services/activityProcessor.ts';
import { BatchWriter } from './services/batchWriter.ts';
import { Settler } from './services/settler.ts';

/** A health check must answer quickly even while the database hangs. */
const HEALTH_PING_TIMEOUT_MS = 1_000;

export interface ConsumerParts {
  readonly config: Config;
  readonly store: ActivityStore;
  readonly logger: Logger;
  readonly clock?: Clock;
}

export interface Consumer {
  /** Not listening yet: the caller listens. */
  readonly healthServer: Server;
  readonly metrics: ConsumerMetrics;
  readonly writer: BatchWriter;
  readonly broker: Broker;
  /** Creates the indexes (retrying until the database answers), then starts consuming. */
  start(): Promise<void>;
  /** Cancels the consumer, writes and acks what is in hand, closes channel and connection. */
  stop(): Promise<void>;
}

export function buildConsumer({ config, store, logger, clock = systemClock }: ConsumerParts): Consumer {
  const metrics = createConsumerMetrics();
  const stopping = new AbortController();

  const settler = new Settler({ clock, logger, metrics });
  const writer: BatchWriter = new BatchWriter({
    store,
    batchSize: config.batchSize,
    batchMaxWaitMs: config.batchMaxWaitMs,
    writeTimeoutMs: config.writeTimeoutMs,
    retry: config.databaseRetry,
    clock,
    logger,
    metrics,
    settler,
    onStoreHealth: () => void broker.refresh(),
  });
  const broker: Broker = new Broker({
    nodes: config.brokerNodes,
    heartbeatSeconds: config.heartbeatSeconds,
    prefetch: config.prefetch,
    topology: config.topology,
    retry: config.brokerReconnect,
    logger,
    clock,
    canConsume: () => writer.storeHealthy,
    // delivery -> parse -> (reject | batch -> write) -> settle
    onDelivery: (delivery) => {
      const parsed = parseDelivery(delivery.message);
      if (parsed.verdict === 'rejected') settler.settle(delivery, parsed);
      else writer.add(delivery, parsed.activity);
    },
  });

  metrics.inHand.track(() => writer.inHand + settler.pending);
  const healthServer = observedHealthServer({ metrics, broker, writer, store, logger });

  return {
    healthServer,
    metrics,
    writer,
    broker,

    async start() {
      await ensureIndexes({ store, retry: config.databaseRetry, clock, logger, signal: stopping.signal });
      if (!stopping.signal.aborted) broker.start();
    },

    async stop() {
      stopping.abort();
      await broker.stopConsuming();
      await writer.flush();
      await settler.idle();
      await broker.close();
    },
  };
}

interface HealthParts {
  readonly metrics: ConsumerMetrics;
  readonly broker: Broker;
  readonly writer: BatchWriter;
  readonly store: ActivityStore;
  readonly logger: Logger;
}

/** The readiness of both dependencies, as probes and as metrics. */
function observedHealthServer({ metrics, broker, writer, store, logger }: HealthParts): Server {
  metrics.connectionUp.track(() => Number(broker.channelOpen), { dependency: 'rabbitmq' });
  metrics.connectionUp.track(() => Number(writer.storeHealthy), { dependency: 'mongodb' });
  return createHealthServer({
    checks: {
      rabbitmq: () => broker.channelOpen,
      mongodb: async () => writer.storeHealthy && (await store.ping(HEALTH_PING_TIMEOUT_MS)),
    },
    registry: metrics.registry,
    logger,
  });
}

interface IndexParts {
  readonly store: ActivityStore;
  readonly retry: BackoffOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly signal: AbortSignal;
}

/** Creates the indexes, retrying with back-off until the database answers or `signal` aborts. */
async function ensureIndexes({ store, retry, clock, logger, signal }: IndexParts): Promise<void> {
  for (let attempt = 1; !signal.aborted; attempt++) {
    try {
      await store.ensureIndexes();
      return;
    } catch (err) {
      const delayMs = backoffDelay(attempt, retry);
      logger.warn('could not create indexes; retrying', { err, delayMs });
      await sleep(clock, delayMs, signal);
    }
  }
}
