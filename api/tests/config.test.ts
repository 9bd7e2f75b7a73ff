import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, DEFAULTS, loadConfig, startupWarnings } from '../src/config.ts';

const URL_ONLY = { RABBITMQ_URL: 'amqp://user:secret@rabbit.internal:5672/vhost' };

function problemsOf(env: Record<string, string | undefined>): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  assert.fail('loadConfig should have thrown');
}

describe('loadConfig', () => {
  test('applies every default when only RABBITMQ_URL is set', () => {
    const config = loadConfig(URL_ONLY);
    assert.deepEqual(config, {
      brokerNodes: [{ url: URL_ONLY.RABBITMQ_URL, label: 'rabbit.internal:5672' }],
      host: DEFAULTS.API_HOST,
      port: 3000,
      topology: { exchange: 'activities', queueName: 'user_activities', queueType: 'quorum', deliveryLimit: 10, replicas: 3, partitions: 1 },
      maxBodyBytes: 65_536,
      maxBatchBodyBytes: 1_048_576,
      batchMaxEvents: 500,
      segmentMaxCallBytes: 32_768,
      segmentMaxBatchBytes: 512_000,
      writeKeys: undefined,
      cors: { anyOrigin: true },
      publishTimeoutMs: 5_000,
      maxUnconfirmed: 1_000,
      heartbeatSeconds: 5,
      rateLimit: { maxRequests: 50, windowMs: 60_000, maxKeys: 1_000_000, sweepIntervalMs: 60_000, ipv6Prefix: 56, store: { kind: 'memory' } },
      trustProxy: { kind: 'hops', hops: 0 },
      shutdownTimeoutMs: 10_000,
      headersTimeoutMs: 10_000,
      keepAliveTimeoutMs: 65_000,
      maxConnections: 10_000,
      maxConnectionsPerClient: 32,
      maxInFlightRequests: 256,
      maxEventLoopDelayMs: 1_000,
      ops: undefined,
      requestTimeoutMs: 30_000,
      logLevel: 'info',
    });
  });

  test('reads every variable', () => {
    const config = loadConfig({
      ...URL_ONLY,
      API_HOST: '127.0.0.1',
      API_PORT: '0',
      QUEUE_NAME: 'events',
      QUEUE_TYPE: 'classic',
      QUEUE_DELIVERY_LIMIT: '3',
      MAX_BODY_BYTES: '1024',
      MAX_BATCH_BODY_BYTES: '4096',
      BATCH_MAX_EVENTS: '5',
      CORS_ALLOWED_ORIGINS: 'https://shop.example, http://localhost:8080',
      KEEP_ALIVE_TIMEOUT_MS: '61000',
      MAX_CONNECTIONS: '100',
      PUBLISH_TIMEOUT_MS: '250',
      MAX_UNCONFIRMED: '7',
      AMQP_HEARTBEAT_SECONDS: '2',
      RATE_LIMIT_MAX_REQUESTS: '5',
      RATE_LIMIT_WINDOW_MS: '1000',
      RATE_LIMIT_MAX_KEYS: '9',
      RATE_LIMIT_SWEEP_INTERVAL_MS: '5000',
      RATE_LIMIT_IPV6_PREFIX: '64',
      TRUST_PROXY: '2',
      SHUTDOWN_TIMEOUT_MS: '0',
      HEADERS_TIMEOUT_MS: '1000',
      REQUEST_TIMEOUT_MS: '2000',
      LOG_LEVEL: 'debug',
    });
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 0);
    assert.deepEqual(config.topology, { exchange: 'activities', queueName: 'events', queueType: 'classic', deliveryLimit: 3, replicas: 3, partitions: 1 });
    assert.deepEqual(
      [config.maxBodyBytes, config.publishTimeoutMs, config.maxUnconfirmed, config.heartbeatSeconds, config.shutdownTimeoutMs],
      [1024, 250, 7, 2, 0],
    );
    assert.deepEqual(config.trustProxy, { kind: 'hops', hops: 2 });
    assert.deepEqual(config.rateLimit, { maxRequests: 5, windowMs: 1000, maxKeys: 9, sweepIntervalMs: 5000, ipv6Prefix: 64, store: { kind: 'memory' } });
    assert.equal(config.logLevel, 'debug');
    assert.deepEqual([config.headersTimeoutMs, config.requestTimeoutMs], [1000, 2000]);
    assert.deepEqual([config.maxBatchBodyBytes, config.batchMaxEvents, config.keepAliveTimeoutMs, config.maxConnections], [4096, 5, 61000, 100]);
    assert.deepEqual(config.cors, { anyOrigin: false, origins: new Set(['https://shop.example', 'http://localhost:8080']) });
  });

  test('refuses a batch limit above MAX_UNCONFIRMED, a batch body above 1 MiB, and CORS origins that are not origins', () => {
    assert.deepEqual(problemsOf({ ...URL_ONLY, BATCH_MAX_EVENTS: '600', MAX_UNCONFIRMED: '100', MAX_BATCH_BODY_BYTES: '2000000', CORS_ALLOWED_ORIGINS: 'https://ok.example,shop.example,https://x.example/path' }), [
      'MAX_BATCH_BODY_BYTES must be an integer from 1 to 1048576 (got "2000000")',
      'CORS_ALLOWED_ORIGINS must be * or a comma-separated list of origins such as https://shop.example (not "shop.example", "https://x.example/path")',
      'BATCH_MAX_EVENTS must not exceed MAX_UNCONFIRMED (got 600 > 100)',
    ]);
  });

  test('reads WRITE_KEYS as names with key digests, keeping no key, and the Segment limits', () => {
    const config = loadConfig({ ...URL_ONLY, WRITE_KEYS: 'web=wk_live_1, backend=wk_live_2', SEGMENT_MAX_CALL_BYTES: '1000', SEGMENT_MAX_BATCH_BYTES: '5000' });
    assert.deepEqual(config.writeKeys?.map(({ name }) => name), ['web', 'backend']);
    assert.equal(JSON.stringify(config).includes('wk_live'), false);
    assert.deepEqual([config.segmentMaxCallBytes, config.segmentMaxBatchBytes], [1000, 5000]);
    assert.equal(loadConfig({ ...URL_ONLY, WRITE_KEYS: ' ' }).writeKeys, undefined);
  });

  test('refuses bad WRITE_KEYS entries without quoting them, Segment limits past 1 MiB, and a call limit above the batch limit', () => {
    const problems = problemsOf({ ...URL_ONLY, WRITE_KEYS: 'web=wk_live_1,wk_live_2', SEGMENT_MAX_BATCH_BYTES: '2000000' });
    assert.deepEqual(problems, [
      'SEGMENT_MAX_BATCH_BYTES must be an integer from 1 to 1048576 (got "2000000")',
      'WRITE_KEYS entry 2 must be name=key, the name of letters, digits, "_", "." or "-" and the key not empty',
    ]);
    assert.ok(problems.every((problem) => !problem.includes('wk_live')));
    assert.deepEqual(problemsOf({ ...URL_ONLY, SEGMENT_MAX_CALL_BYTES: '600000' }), ['SEGMENT_MAX_CALL_BYTES must not exceed SEGMENT_MAX_BATCH_BYTES (got 600000 > 512000)']);
  });

  test('caps the slow-client timeouts at 10 s for headers and 30 s for the whole request', () => {
    assert.deepEqual(problemsOf({ ...URL_ONLY, HEADERS_TIMEOUT_MS: '10001', REQUEST_TIMEOUT_MS: '30001' }), [
      'HEADERS_TIMEOUT_MS must be an integer from 100 to 10000 (got "10001")',
      'REQUEST_TIMEOUT_MS must be an integer from 100 to 30000 (got "30001")',
    ]);
    assert.deepEqual(problemsOf({ ...URL_ONLY, HEADERS_TIMEOUT_MS: '2000', REQUEST_TIMEOUT_MS: '1000' }), [
      'HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS (got 2000 > 1000)',
    ]);
  });

  test('reads the overload limits and OPS_PORT, with OPS_HOST only beside it', () => {
    const config = loadConfig({ ...URL_ONLY, MAX_CONNECTIONS_PER_CLIENT: '4', MAX_IN_FLIGHT_REQUESTS: '9', MAX_EVENT_LOOP_DELAY_MS: '250', OPS_PORT: '9090', OPS_HOST: '10.0.0.5' });
    assert.deepEqual([config.maxConnectionsPerClient, config.maxInFlightRequests, config.maxEventLoopDelayMs], [4, 9, 250]);
    assert.deepEqual(config.ops, { host: '10.0.0.5', port: 9090 });
    assert.deepEqual(loadConfig({ ...URL_ONLY, OPS_PORT: '0' }).ops, { host: '0.0.0.0', port: 0 });
    assert.equal(loadConfig({ ...URL_ONLY, OPS_HOST: '10.0.0.5' }).ops, undefined);
  });

  test('refuses overload limits out of range and an OPS_PORT that is API_PORT', () => {
    assert.deepEqual(problemsOf({ ...URL_ONLY, MAX_CONNECTIONS_PER_CLIENT: '0', MAX_IN_FLIGHT_REQUESTS: 'many', MAX_EVENT_LOOP_DELAY_MS: '5', OPS_PORT: '70000' }), [
      'MAX_CONNECTIONS_PER_CLIENT must be an integer from 1 to 1000000 (got "0")',
      'MAX_IN_FLIGHT_REQUESTS must be an integer from 1 to 1000000 (got "many")',
      'MAX_EVENT_LOOP_DELAY_MS must be an integer from 10 to 60000 (got "5")',
      'OPS_PORT must be an integer from 0 to 65535 (got "70000")',
    ]);
    assert.deepEqual(problemsOf({ ...URL_ONLY, OPS_PORT: '3000' }), ['OPS_PORT must differ from API_PORT (both 3000)']);
    assert.equal(loadConfig({ ...URL_ONLY, API_PORT: '0', OPS_PORT: '0' }).ops?.port, 0, 'two free ports');
  });

  test('warns at start-up while WRITE_KEYS is empty and while TRUST_PROXY is a hop count, and only then', () => {
    assert.deepEqual(startupWarnings(loadConfig({ ...URL_ONLY, TRUST_PROXY: '1' })), [
      'WRITE_KEYS is empty: anyone who reaches the API can send events; set WRITE_KEYS to require a key',
      "TRUST_PROXY is a hop count (1): a client that reaches the API directly can forge X-Forwarded-For and choose the address it is rate limited under; set TRUST_PROXY to the proxies' addresses or CIDRs instead",
    ]);
    assert.deepEqual(startupWarnings(loadConfig({ ...URL_ONLY, WRITE_KEYS: 'web=k', TRUST_PROXY: '10.0.0.0/8' })), []);
    assert.deepEqual(startupWarnings(loadConfig({ ...URL_ONLY, WRITE_KEYS: 'web=k' })), [], 'TRUST_PROXY=0 believes no header');
  });

  test('reads TRUST_PROXY as a list of proxy addresses and CIDRs, IPv4 and IPv6, when it is not a number', () => {
    const { trustProxy } = loadConfig({ ...URL_ONLY, TRUST_PROXY: '10.0.0.0/8, fd00::/8,127.0.0.1' });
    assert.deepEqual(trustProxy, {
      kind: 'list',
      ranges: [
        { family: 4, value: 0x0a00_0000n, prefix: 8 },
        { family: 6, value: 0xfdn << 120n, prefix: 8 },
        { family: 4, value: 0x7f00_0001n, prefix: 32 },
      ],
    });
  });

  test('names TRUST_PROXY once, with every bad entry of its list', () => {
    assert.deepEqual(problemsOf({ ...URL_ONLY, TRUST_PROXY: '10.0.0.0/8,localhost,,fd00::/129' }), [
      'TRUST_PROXY must be a hop count from 0 to 100 or a comma-separated list of IP addresses and CIDRs (not "localhost", "", "fd00::/129")',
    ]);
    assert.deepEqual(problemsOf({ ...URL_ONLY, TRUST_PROXY: '101' }), ['TRUST_PROXY must be an integer from 0 to 100 (got "101")']);
    assert.deepEqual(problemsOf({ ...URL_ONLY, TRUST_PROXY: '-1' }), [
      'TRUST_PROXY must be a hop count from 0 to 100 or a comma-separated list of IP addresses and CIDRs (not "-1")',
    ]);
  });

  test('accepts an IPv6 key prefix from 1 to 128 bits and nothing else', () => {
    assert.equal(loadConfig({ ...URL_ONLY, RATE_LIMIT_IPV6_PREFIX: '1' }).rateLimit.ipv6Prefix, 1);
    assert.equal(loadConfig({ ...URL_ONLY, RATE_LIMIT_IPV6_PREFIX: '128' }).rateLimit.ipv6Prefix, 128);
    for (const value of ['0', '129', '48.5', '/56']) {
      assert.deepEqual(problemsOf({ ...URL_ONLY, RATE_LIMIT_IPV6_PREFIX: value }), [`RATE_LIMIT_IPV6_PREFIX must be an integer from 1 to 128 (got "${value}")`]);
    }
  });

  test('RATE_LIMIT_STORE=redis reads REDIS_URL, the key prefix and the timeout, with their defaults', () => {
    const url = 'rediss://limiter:s3cret@redis.internal:6380/2';
    assert.deepEqual(loadConfig({ ...URL_ONLY, RATE_LIMIT_STORE: 'redis', REDIS_URL: url }).rateLimit.store, {
      kind: 'redis',
      url,
      prefix: 'event-tracker:rl:',
      timeoutMs: 50,
    });
    assert.deepEqual(loadConfig({ ...URL_ONLY, RATE_LIMIT_STORE: 'redis', REDIS_URL: url, RATE_LIMIT_REDIS_PREFIX: 'shop:rl:', RATE_LIMIT_REDIS_TIMEOUT_MS: '20' }).rateLimit.store, {
      kind: 'redis',
      url,
      prefix: 'shop:rl:',
      timeoutMs: 20,
    });
  });

  test('RATE_LIMIT_STORE=redis needs a redis:// or rediss:// REDIS_URL, named without repeating it, and a sane prefix and timeout', () => {
    assert.deepEqual(problemsOf({ ...URL_ONLY, RATE_LIMIT_STORE: 'redis' }), ['REDIS_URL is required (a redis:// or rediss:// URL, since RATE_LIMIT_STORE is redis)']);
    const problems = problemsOf({ ...URL_ONLY, RATE_LIMIT_STORE: 'redis', REDIS_URL: 'http://user:hunter2@redis', RATE_LIMIT_REDIS_PREFIX: 'two words', RATE_LIMIT_REDIS_TIMEOUT_MS: '0' });
    assert.deepEqual(problems, [
      'REDIS_URL must be a redis:// or rediss:// URL',
      'RATE_LIMIT_REDIS_PREFIX must be 1 to 100 printable ASCII characters without spaces (got "two words")',
      'RATE_LIMIT_REDIS_TIMEOUT_MS must be an integer from 1 to 1000 (got "0")',
    ]);
    assert.ok(problems.every((problem) => !problem.includes('hunter2')));
    assert.deepEqual(problemsOf({ ...URL_ONLY, RATE_LIMIT_STORE: 'memcached' }), ['RATE_LIMIT_STORE must be one of memory, redis (got "memcached")']);
  });

  test('with the memory store, REDIS_URL and the other Redis settings are not read', () => {
    assert.deepEqual(loadConfig({ ...URL_ONLY, REDIS_URL: 'not a url', RATE_LIMIT_REDIS_TIMEOUT_MS: 'soon' }).rateLimit.store, { kind: 'memory' });
  });

  test('treats an empty value as unset', () => {
    assert.equal(loadConfig({ ...URL_ONLY, API_PORT: '' }).port, 3000);
  });

  test('names a missing RABBITMQ_URL', () => {
    assert.deepEqual(problemsOf({}), ['RABBITMQ_URL is required (an amqp:// or amqps:// URL, or a comma-separated list of them)']);
  });

  test('rejects a non-AMQP RABBITMQ_URL without repeating it, since it may hold a password', () => {
    const [problem] = problemsOf({ RABBITMQ_URL: 'http://user:hunter2@host' });
    assert.equal(problem, 'RABBITMQ_URL must be an amqp:// or amqps:// URL');
    assert.deepEqual(problemsOf({ RABBITMQ_URL: 'not a url' }), ['RABBITMQ_URL must be an amqp:// or amqps:// URL']);
  });

  test("takes a cluster's nodes as a comma-separated list, each with its own credentials", () => {
    const config = loadConfig({ RABBITMQ_URL: 'amqp://a:one@rabbit-1:5672, amqps://b:two@rabbit-2,amqp://rabbit-3:5673/vhost' });
    assert.deepEqual(
      config.brokerNodes.map((node) => node.label),
      ['rabbit-1:5672', 'rabbit-2:5671', 'rabbit-3:5673'],
    );
    assert.equal(config.brokerNodes[1]!.url, 'amqps://b:two@rabbit-2');
  });

  test('names each bad entry of a node list by position, never by its text', () => {
    const problems = problemsOf({ RABBITMQ_URL: 'amqp://ok-1,http://u:hunter2@bad,,amqp://ok-2' });
    assert.deepEqual(problems, [
      'RABBITMQ_URL entry 2 of 4 must be an amqp:// or amqps:// URL',
      'RABBITMQ_URL entry 3 of 4 must be an amqp:// or amqps:// URL (it is empty)',
    ]);
    assert.ok(!problems.join().includes('hunter2'));
  });

  test('checks EVENTS_EXCHANGE, QUEUE_REPLICAS and QUEUE_PARTITIONS', () => {
    assert.deepEqual(problemsOf({ ...URL_ONLY, EVENTS_EXCHANGE: 'amq.topic', QUEUE_REPLICAS: '0', QUEUE_PARTITIONS: '65' }), [
      'EVENTS_EXCHANGE must be 1 to 255 bytes and not start with "amq." (got "amq.topic")',
      'QUEUE_REPLICAS must be an integer from 1 to 7 (got "0")',
      'QUEUE_PARTITIONS must be an integer from 1 to 64 (got "65")',
    ]);
    const config = loadConfig({ ...URL_ONLY, EVENTS_EXCHANGE: 'events', QUEUE_REPLICAS: '5', QUEUE_PARTITIONS: '3' });
    assert.deepEqual([config.topology.exchange, config.topology.replicas, config.topology.partitions], ['events', 5, 3]);
  });

  test('lists every bad variable at once, one line each', () => {
    const problems = problemsOf({
      API_PORT: '70000',
      QUEUE_TYPE: 'stream',
      MAX_BODY_BYTES: '-1',
      PUBLISH_TIMEOUT_MS: '1.5',
      AMQP_HEARTBEAT_SECONDS: '0',
      RATE_LIMIT_WINDOW_MS: '10',
      LOG_LEVEL: 'verbose',
      QUEUE_NAME: 'amq.mine',
    });
    const named = problems.map((line) => line.split(' ')[0]);
    assert.deepEqual(named.sort(), [
      'AMQP_HEARTBEAT_SECONDS',
      'API_PORT',
      'LOG_LEVEL',
      'MAX_BODY_BYTES',
      'PUBLISH_TIMEOUT_MS',
      'QUEUE_NAME',
      'QUEUE_TYPE',
      'RABBITMQ_URL',
      'RATE_LIMIT_WINDOW_MS',
    ]);
    assert.ok(problems.includes('API_PORT must be an integer from 0 to 65535 (got "70000")'));
    assert.ok(problems.includes('QUEUE_TYPE must be one of quorum, classic (got "stream")'));
    assert.ok(problems.includes('MAX_BODY_BYTES must be an integer from 1 to 1048576 (got "-1")'));
    assert.ok(problems.includes('RATE_LIMIT_WINDOW_MS must be an integer from 1000 to 1073741824 (got "10")'));
    assert.deepEqual(problemsOf({ RABBITMQ_URL: 'amqp://localhost', RATE_LIMIT_SWEEP_INTERVAL_MS: '2000000000' }), [
      'RATE_LIMIT_SWEEP_INTERVAL_MS must be an integer from 1000 to 1073741824 (got "2000000000")',
    ]);
  });

  test('the error message is the problems, one per line', () => {
    assert.throws(() => loadConfig({ API_PORT: 'x' }), {
      message: 'RABBITMQ_URL is required (an amqp:// or amqps:// URL, or a comma-separated list of them)\nAPI_PORT must be an integer from 0 to 65535 (got "x")',
    });
  });
});
