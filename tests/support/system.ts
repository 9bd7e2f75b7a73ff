// One isolated copy of the whole system for an end-to-end test: its own queue and database,
// the API and the consumer as child processes on the chosen runtime, and a client for both ends.
import { randomUUID } from 'node:crypto';
import { MongoClient, type Collection } from 'mongodb';
import type { ActivityEvent, StoredActivity } from '@event-tracker/shared';
import { deleteTopology, serviceUrl, uniqueName } from './services.ts';
import { startReady, startService, stopService, waitFor, type RunningService, type Runtime } from './processes.ts';

export interface Answer {
  readonly status: number;
  readonly id?: string;
}

export class TestSystem {
  readonly queue = uniqueName('e2e');
  readonly database = uniqueName('e2e');
  readonly runtime: Runtime;
  readonly mongo: MongoClient;
  api?: RunningService;
  consumer?: RunningService;
  /** RABBITMQ_URL (a cluster's nodes, or a proxy), DATABASE_URL, QUEUE_PARTITIONS: for both services. */
  readonly overrides: { RABBITMQ_URL?: string; DATABASE_URL?: string; QUEUE_PARTITIONS?: string } = {};
  /** Variables for the API alone, over env(): WRITE_KEYS, or a RABBITMQ_URL through a proxy. */
  readonly apiEnv: Record<string, string> = {};

  constructor(runtime: Runtime) {
    this.runtime = runtime;
    this.mongo = new MongoClient(this.databaseUrl(), { serverSelectionTimeoutMS: 5000 });
  }

  databaseUrl(base = serviceUrl('DATABASE_URL')): string {
    const url = new URL(base);
    url.pathname = `/${this.database}`;
    return url.toString();
  }

  get activities(): Collection<StoredActivity> {
    return this.mongo.db().collection<StoredActivity>('activities');
  }

  env(): Record<string, string> {
    return {
      RABBITMQ_URL: this.overrides.RABBITMQ_URL ?? serviceUrl('RABBITMQ_URL'),
      DATABASE_URL: this.databaseUrl(this.overrides.DATABASE_URL ?? serviceUrl('DATABASE_URL')),
      QUEUE_NAME: this.queue,
      EVENTS_EXCHANGE: this.queue,
      API_HOST: '127.0.0.1',
      API_PORT: '0',
      HEALTH_HOST: '127.0.0.1',
      HEALTH_PORT: '0',
      // The test is the one proxy in front of many clients: listed, its connections are not capped per address.
      TRUST_PROXY: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...(this.overrides.QUEUE_PARTITIONS === undefined ? {} : { QUEUE_PARTITIONS: this.overrides.QUEUE_PARTITIONS }),
    };
  }

  async startApi(): Promise<RunningService> {
    this.api = await startReady('api', this.runtime, { ...this.env(), ...this.apiEnv });
    return this.api;
  }

  async startConsumer(): Promise<RunningService> {
    this.consumer = await startService('consumer', this.runtime, this.env());
    return this.consumer;
  }

  /** POSTs one event as client `clientIp` (through X-Forwarded-For, from the trusted 127.0.0.1). */
  async post(body: unknown, clientIp: string, path = '/api/v1/activities'): Promise<Answer> {
    const response = await fetch(`http://127.0.0.1:${this.api!.port}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': clientIp },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const answer = (await response.json()) as { id?: string };
    return response.status === 202 ? { status: 202, id: answer.id! } : { status: response.status };
  }

  async consumerHealth(): Promise<number> {
    const response = await fetch(`http://127.0.0.1:${this.consumer!.port}/health`);
    await response.arrayBuffer();
    return response.status;
  }

  /** Waits until the collection holds `count` documents (or fails after `timeoutMs`). */
  waitForStored(count: number, timeoutMs = 60_000): Promise<void> {
    const stored = () => this.activities.countDocuments();
    // The consumer's own account is what explains a stall.
    return waitFor(`${count} stored events`, async () => (await stored()) >= count, timeoutMs, async () => {
      const now = await stored().catch(() => 'unknown');
      return `${now} stored; consumer log tail:\n${this.consumer?.logs.slice(-60).join('\n')}`;
    });
  }

  async stop(): Promise<void> {
    await Promise.all([this.api && stopService(this.api), this.consumer && stopService(this.consumer)]);
    await deleteTopology(this.queue, Number(this.overrides.QUEUE_PARTITIONS ?? 1));
    await this.mongo.db().dropDatabase();
    await this.mongo.close();
  }
}

export function event(index: number, id: string = randomUUID()): ActivityEvent {
  return {
    id,
    userId: `user-${index % 17}`,
    eventType: index % 2 === 0 ? 'page_view' : 'user_login',
    timestamp: new Date(Date.UTC(2023, 9, 27, 10, 0, index % 60)).toISOString(),
    payload: { index, device: 'desktop', nested: { ok: true } },
  };
}

/** Client address for request `index`: `clients` distinct addresses in 127.0.0.0/8. */
export function clientFor(index: number, clients: number): string {
  return `127.0.${Math.floor((index % clients) / 250)}.${(index % clients) % 250 + 2}`;
}
