// Batch ingest against the broker's own rate: wrk posts 100-event batches to
// POST /api/v1/activities/batch, and in the same run this process publishes the same messages with
// confirms straight to a queue declared as the API declares its own (common/src/broker/topology.ts), with
// as many unconfirmed at once as the API can have at that concurrency. Events/s, and their ratio.
// Usage: RABBITMQ_URL=... node --import tsx bench/batch.ts   (BENCH_SECONDS, BENCH_RUNS, BENCH_RUNTIMES, BENCH_CONCURRENCY)
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import type { ActivityEvent } from '@event-tracker/shared';
import { assertTopology } from '@event-tracker/common/broker/topology.ts';
import { deleteTopology, testTopology } from '../tests/support/services.ts';
import { encodeMessage } from '../api/src/publisher.ts';
import { clearQueues, median, requireEnv, startReady, stopService, table, wrk, type Runtime, type WrkResult } from './support.ts';

const rabbitmqUrl = requireEnv('RABBITMQ_URL');
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const runtimes = (process.env.BENCH_RUNTIMES ?? 'node20-tsx,bun').split(',') as Runtime[];
const concurrencies = (process.env.BENCH_CONCURRENCY ?? '4,16').split(',').map(Number);
const EVENTS_PER_REQUEST = 100;

// Without ids, so the API makes a new one per event and every request may repeat the same body.
const events: ActivityEvent[] = Array.from({ length: EVENTS_PER_REQUEST }, (_, i) => ({
  userId: `a1b2c3d4-e5f6-7890-1234-${String(i).padStart(12, '0')}`,
  eventType: i % 3 === 0 ? 'page_view' : 'user_login',
  timestamp: new Date(Date.UTC(2023, 9, 27, 10, 0, i % 60)).toISOString(),
  payload: { ipAddress: '192.168.1.1', device: 'desktop', browser: 'Chrome', index: i },
}));
const directory = mkdtempSync(join(tmpdir(), 'bench-batch-'));
const bodyFile = join(directory, 'batch.json');
writeFileSync(bodyFile, JSON.stringify({ batch: events }));

/**
 * Publishes with confirms on one channel for `seconds`, never more than `window` unconfirmed (as
 * the API holds at most connections × 100), each message exactly as the API encodes an event.
 * Counts the confirms that arrive within the time, then waits for the rest.
 */
async function brokerOnly(queue: string, window: number, runSeconds = seconds): Promise<{ eventsPerSecond: number; errors: number }> {
  const connection = await amqp.connect(rabbitmqUrl);
  try {
    const channel = await connection.createConfirmChannel();
    const started = performance.now();
    const deadline = started + runSeconds * 1000;
    let unconfirmed = 0;
    let confirmedInTime = 0;
    let errors = 0;
    let sent = 0;
    let waitingForDrain = false;
    await new Promise<void>((resolve, reject) => {
      // Bounded: a broker that stops confirming ends the run instead of hanging it.
      const guard = setTimeout(() => reject(new Error(`${unconfirmed} publishes still unconfirmed 30 s after the run`)), runSeconds * 1000 + 30_000);
      const done = (): void => {
        clearTimeout(guard);
        resolve();
      };
      const pump = (): void => {
        while (!waitingForDrain && unconfirmed < window && performance.now() < deadline) {
          const { content, properties } = encodeMessage({ ...events[sent++ % events.length]!, id: randomUUID() }, new Date());
          unconfirmed++;
          const writable = channel.sendToQueue(queue, content, properties, (err) => {
            unconfirmed--;
            if (err) errors++;
            else if (performance.now() <= deadline) confirmedInTime++;
            pump();
          });
          if (!writable) waitingForDrain = true;
        }
        if (unconfirmed === 0 && performance.now() >= deadline) done();
      };
      channel.on('drain', () => {
        waitingForDrain = false;
        pump();
      });
      pump();
    });
    return { eventsPerSecond: confirmedInTime / runSeconds, errors };
  } finally {
    await connection.close();
  }
}

function spread(values: readonly number[]): string {
  return `${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)}`;
}

const rows: Record<string, string | number>[] = [];
try {
  for (const runtime of runtimes) {
    const queue = `bench_batch_${process.pid}`;
    const brokerQueue = `${queue}_broker`;
    const api = await startReady('api', runtime, {
      RABBITMQ_URL: rabbitmqUrl,
      QUEUE_NAME: queue,
      EVENTS_EXCHANGE: queue,
      API_HOST: '127.0.0.1',
      API_PORT: '0',
      LOG_LEVEL: 'info',
      RATE_LIMIT_MAX_REQUESTS: '1000000000',
      // wrk's connections all come from one address.
      MAX_CONNECTIONS_PER_CLIENT: '1000000',
      // Room for every connection's batch at once: the cap is not what this measures.
      MAX_UNCONFIRMED: String(Math.max(...concurrencies) * EVENTS_PER_REQUEST),
    });
    const connection = await amqp.connect(rabbitmqUrl);
    // The API's defaults but for the names: the broker-only queue must be the same kind of queue.
    await assertTopology(await connection.createChannel(), testTopology(brokerQueue));
    await connection.close();
    const url = `http://127.0.0.1:${api.port}/api/v1/activities/batch`;
    try {
      // Unrecorded, so neither side is measured while its JIT (or the broker's queue) warms up.
      await brokerOnly(brokerQueue, concurrencies[0]! * EVENTS_PER_REQUEST, 2);
      await wrk(url, concurrencies[0]!, 2, bodyFile);
      await clearQueues(rabbitmqUrl, 'purge', queue, brokerQueue);
      for (const connections of concurrencies) {
        const ours: WrkResult[] = [];
        const bare: Awaited<ReturnType<typeof brokerOnly>>[] = [];
        for (let i = 0; i < runs; i++) {
          // Alternate so drift on a shared 2-core machine hits both sides alike.
          bare.push(await brokerOnly(brokerQueue, connections * EVENTS_PER_REQUEST));
          ours.push(await wrk(url, connections, seconds, bodyFile));
          await clearQueues(rabbitmqUrl, 'purge', queue, brokerQueue);
        }
        const oursRate = median(ours.map((r) => r.requestsPerSecond * EVENTS_PER_REQUEST));
        const bareRate = median(bare.map((r) => r.eventsPerSecond));
        rows.push({
          runtime,
          connections,
          'api events/s': oursRate,
          'broker-only events/s': bareRate,
          ratio: oursRate / bareRate,
          // Each run's API rate over the broker-only rate measured just before it: the spread is the noise.
          'ratio per run, min-max': spread(ours.map((r, i) => (r.requestsPerSecond * EVENTS_PER_REQUEST) / bare[i]!.eventsPerSecond)),
          'api requests/s': median(ours.map((r) => r.requestsPerSecond)),
          'api p50 ms': median(ours.map((r) => r.p50Ms)),
          'api p99 ms': median(ours.map((r) => r.p99Ms)),
          errors: ours.reduce((sum, r) => sum + r.errors, 0) + bare.reduce((sum, r) => sum + r.errors, 0),
        });
      }
    } finally {
      await stopService(api);
      await deleteTopology(queue);
      await deleteTopology(brokerQueue);
    }
  }
} finally {
  rmSync(directory, { recursive: true, force: true });
}
table(`Batch ingest: ${EVENTS_PER_REQUEST} events per request against publish-with-confirms alone, ${seconds} s per run, median of ${runs} runs`, rows);
