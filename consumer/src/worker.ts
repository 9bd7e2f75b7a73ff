// Entry point: the only file that reads process.env, opens sockets, listens and handles signals.
// `npm run start:consumer` (Node + tsx) or `npm run start:consumer:bun`.
import type { AddressInfo } from 'node:net';
import { MongoClient } from 'mongodb';
import { CLIENT_OPTIONS, createActivityStore } from './activityStore.ts';
import { buildConsumer } from './app.ts';
import { ConfigError, loadConfig, startupWarnings, type Config } from './config.ts';
import { createLogger } from '@event-tracker/common/logger.ts';

const bootLogger = createLogger({ service: 'consumer' });

let config: Config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  for (const problem of err.problems) bootLogger.fatal(`invalid configuration: ${problem}`);
  process.exit(1);
}

const logger = createLogger({ service: 'consumer' }, { level: config.logLevel });
for (const warning of startupWarnings(process.env)) logger.warn(warning);
const client = new MongoClient(config.databaseUrl, CLIENT_OPTIONS);
const consumer = buildConsumer({ config, store: createActivityStore(client.db(config.databaseName), config.writeConcern), logger });

process.on('unhandledRejection', (err) => logger.error('unhandled promise rejection', { err }));

let shuttingDown = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  logger.info('shutting down', { signal, inHand: consumer.writer.inHand });
  // Whatever is not acked by the deadline stays with the broker and is redelivered: nothing is lost.
  const deadline = setTimeout(() => {
    logger.error('shutdown timed out; unacked messages return to the queue', { timeoutMs: config.shutdownTimeoutMs, inHand: consumer.writer.inHand });
    process.exit(1);
  }, config.shutdownTimeoutMs);
  try {
    await consumer.stop();
    consumer.healthServer.close();
    consumer.healthServer.closeAllConnections();
    await client.close();
    clearTimeout(deadline);
    logger.info('stopped');
    process.exit(0);
  } catch (err) {
    logger.error('shutdown failed', { err });
    process.exit(1);
  }
}
process.on('SIGTERM', (signal) => void shutdown(signal));
process.on('SIGINT', (signal) => void shutdown(signal));

consumer.healthServer.on('error', (err) => {
  logger.fatal('health server failed', { err });
  process.exit(1);
});
consumer.healthServer.listen(config.healthPort, config.healthHost, () => {
  const { port } = consumer.healthServer.address() as AddressInfo;
  logger.info('health server listening', { port });
});
void consumer.start();
