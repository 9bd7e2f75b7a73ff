import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, DEFAULTS, databaseNameOf, loadConfig, startupWarnings } from '../src/config.ts';

// Placeholders only: loadConfig is pure and never connects.
const REQUIRED = { RABBITMQ_URL: 'amqp://rabbitmq.test', DATABASE_URL: 'mongodb://mongodb.test/activity_db' };

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('loadConfig', () => {
  test('applies every default when only the URLs are set', () => {
    const config = loadConfig(REQUIRED);
    assert.deepEqual(config, {
      brokerNodes: [{ url: REQUIRED.RABBITMQ_URL, label: 'rabbitmq.test:5672' }],
      databaseUrl: REQUIRED.DATABASE_URL,
      databaseName: 'activity_db',
      writeConcern: 'majority',
      topology: { exchange: 'activities', queueName: 'user_activities', queueType: 'quorum', deliveryLimit: 10, replicas: 3, partitions: 1 },
      prefetch: 500,
      batchSize: 250,
      batchMaxWaitMs: 20,
      writeTimeoutMs: 15_000,
      healthHost: '0.0.0.0',
      healthPort: 8001,
      heartbeatSeconds: 5,
      shutdownTimeoutMs: 10_000,
      logLevel: 'info',
      databaseRetry: { baseMs: 100, maxMs: 30_000 },
      brokerReconnect: { baseMs: 100, maxMs: 30_000 },
    });
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.topology));
    assert.equal(DEFAULTS.PREFETCH, 500);
  });

  test('reads every variable it is given', () => {
    const config = loadConfig({
      ...REQUIRED,
      QUEUE_NAME: 'q',
      QUEUE_TYPE: 'classic',
      QUEUE_DELIVERY_LIMIT: '3',
      PREFETCH: '50',
      BATCH_SIZE: '50',
      BATCH_MAX_WAIT_MS: '0',
      WRITE_TIMEOUT_MS: '250',
      HEALTH_HOST: '127.0.0.1',
      HEALTH_PORT: '0',
      AMQP_HEARTBEAT_SECONDS: '2',
      SHUTDOWN_TIMEOUT_MS: '500',
      LOG_LEVEL: 'debug',
      RETRY_BASE_MS: '10',
      RETRY_MAX_MS: '10',
    });
    assert.deepEqual(config.topology, { exchange: 'activities', queueName: 'q', queueType: 'classic', deliveryLimit: 3, replicas: 3, partitions: 1 });
    assert.equal(config.healthPort, 0);
    assert.equal(config.batchMaxWaitMs, 0);
    assert.equal(config.writeTimeoutMs, 250);
    assert.equal(config.heartbeatSeconds, 2);
    assert.equal(config.logLevel, 'debug');
  });

  test('lists every bad variable in one error, one line each', () => {
    const problems = problemsOf({
      DATABASE_URL: 'postgres://db/x',
      QUEUE_TYPE: 'stream',
      PREFETCH: '0',
      BATCH_SIZE: '1.5',
      HEALTH_PORT: '70000',
      LOG_LEVEL: 'verbose',
      SHUTDOWN_TIMEOUT_MS: '-1',
    });
    assert.deepEqual(problems, [
      'RABBITMQ_URL is required (an amqp:// or amqps:// URL, or a comma-separated list of them)',
      'QUEUE_TYPE must be one of quorum, classic (got "stream")',
      'SHUTDOWN_TIMEOUT_MS must be an integer from 0 to 600000 (got "-1")',
      'LOG_LEVEL must be one of debug, info, warn, error, fatal (got "verbose")',
      'DATABASE_URL must be a mongodb:// or mongodb+srv:// URL',
      'PREFETCH must be an integer from 1 to 65535 (got "0")',
      'BATCH_SIZE must be an integer from 1 to 65535 (got "1.5")',
      'HEALTH_PORT must be an integer from 0 to 65535 (got "70000")',
    ]);
    assert.throws(() => loadConfig({}), {
      message: 'RABBITMQ_URL is required (an amqp:// or amqps:// URL, or a comma-separated list of them)\nDATABASE_URL is required (a mongodb:// or mongodb+srv:// URL naming the database)',
    });
  });

  test('requires a database name in the path of DATABASE_URL', () => {
    for (const url of ['mongodb://mongodb.test', 'mongodb://mongodb.test/', 'mongodb://mongodb.test/?authSource=admin']) {
      assert.deepEqual(problemsOf({ ...REQUIRED, DATABASE_URL: url }), [
        'DATABASE_URL must name the database in its path, e.g. mongodb://host:27017/activity_db',
      ]);
    }
  });

  test('refuses a batch larger than the prefetch window, and a retry base above its cap', () => {
    assert.deepEqual(problemsOf({ ...REQUIRED, PREFETCH: '10', BATCH_SIZE: '20', RETRY_BASE_MS: '500', RETRY_MAX_MS: '100' }), [
      'BATCH_SIZE (20) must not exceed PREFETCH (10)',
      'RETRY_BASE_MS (500) must not exceed RETRY_MAX_MS (100)',
    ]);
  });

  test('reads the database retry and the broker reconnect back-off as two pairs', () => {
    const config = loadConfig({ ...REQUIRED, DATABASE_RETRY_BASE_MS: '10', DATABASE_RETRY_MAX_MS: '20', BROKER_RECONNECT_BASE_MS: '30', BROKER_RECONNECT_MAX_MS: '40' });
    assert.deepEqual(config.databaseRetry, { baseMs: 10, maxMs: 20 });
    assert.deepEqual(config.brokerReconnect, { baseMs: 30, maxMs: 40 });
    assert.deepEqual(startupWarnings({ ...REQUIRED, DATABASE_RETRY_BASE_MS: '10' }), []);
    assert.deepEqual(problemsOf({ ...REQUIRED, BROKER_RECONNECT_BASE_MS: '500', BROKER_RECONNECT_MAX_MS: '100' }), ['BROKER_RECONNECT_BASE_MS (500) must not exceed BROKER_RECONNECT_MAX_MS (100)']);
  });

  test('still takes the deprecated RETRY_BASE_MS and RETRY_MAX_MS for whichever of the new variables is unset, with a warning at start-up', () => {
    const env = { ...REQUIRED, RETRY_BASE_MS: '50', RETRY_MAX_MS: '500', BROKER_RECONNECT_MAX_MS: '900' };
    const config = loadConfig(env);
    assert.deepEqual(config.databaseRetry, { baseMs: 50, maxMs: 500 });
    assert.deepEqual(config.brokerReconnect, { baseMs: 50, maxMs: 900 });
    const warnings = startupWarnings(env);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0]!, /^RETRY_BASE_MS is deprecated .*DATABASE_RETRY_BASE_MS and BROKER_RECONNECT_BASE_MS/);
    assert.match(warnings[1]!, /^RETRY_MAX_MS is deprecated .*DATABASE_RETRY_MAX_MS and BROKER_RECONNECT_MAX_MS/);
    assert.deepEqual(problemsOf({ ...REQUIRED, RETRY_BASE_MS: '0' }), ['RETRY_BASE_MS must be an integer from 1 to 3600000 (got "0")']);
  });

  test('takes DATABASE_WRITE_CONCERN as "majority" or a member count, and refuses anything else', () => {
    assert.equal(loadConfig({ ...REQUIRED, DATABASE_WRITE_CONCERN: '2' }).writeConcern, 2);
    assert.equal(loadConfig({ ...REQUIRED, DATABASE_WRITE_CONCERN: 'majority' }).writeConcern, 'majority');
    for (const bad of ['0', 'all', '-1', '1.5']) {
      assert.deepEqual(problemsOf({ ...REQUIRED, DATABASE_WRITE_CONCERN: bad }), [`DATABASE_WRITE_CONCERN must be "majority" or a number of members from 1 to 99 (got "${bad}")`]);
    }
  });

  test('refuses a non-AMQP broker URL', () => {
    assert.deepEqual(problemsOf({ ...REQUIRED, RABBITMQ_URL: 'http://rabbitmq.test' }), ['RABBITMQ_URL must be an amqp:// or amqps:// URL']);
  });
});

describe('databaseNameOf', () => {
  test('reads the database from single-host, replica-set and SRV connection strings', () => {
    assert.equal(databaseNameOf('mongodb://user:pass@mongodb:27017/activity_db?authSource=admin'), 'activity_db');
    assert.equal(databaseNameOf('mongodb://a.test:27017,b.test:27017/activity_db?replicaSet=rs0'), 'activity_db');
    assert.equal(databaseNameOf('mongodb+srv://cluster.test/other%5Fdb'), 'other_db');
    assert.equal(databaseNameOf('mongodb://mongodb.test'), undefined);
  });
});
