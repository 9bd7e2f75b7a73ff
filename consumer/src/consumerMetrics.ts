// The consumer's Prometheus metrics, served by GET /metrics.
import { Counter, Gauge, Histogram, Registry } from '@event-tracker/common/metrics.ts';

export function createConsumerMetrics() {
  const registry = new Registry();
  return {
    registry,
    stored: registry.add(new Counter('consumer_messages_stored_total', 'Messages written to the activities collection and acknowledged.')),
    duplicates: registry.add(new Counter('consumer_duplicates_skipped_total', 'Messages already stored (duplicate key), acknowledged without a new document.')),
    crossSourceIds: registry.add(
      new Counter('consumer_cross_source_ids_total', "Events stored as <source>:<id> because another source's event already held their id (WRITE_KEYS); both are kept."),
    ),
    deadLettered: registry.add(
      new Counter('consumer_messages_dead_lettered_total', 'Messages copied to the dead-letter queue with their reason and acked, by cause: unparseable, contract, unencodable, refused.'),
    ),
    retries: registry.add(new Counter('consumer_write_retries_total', 'Batch writes retried after a database failure.')),
    batchSize: registry.add(new Histogram('consumer_batch_size', 'Documents per insertMany.', [1, 5, 10, 25, 50, 100, 200, 500, 1000])),
    writeSeconds: registry.add(
      new Histogram('consumer_write_duration_seconds', 'Duration of one insertMany, successful or not.', [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
    ),
    inHand: registry.add(new Gauge('consumer_messages_in_hand', 'Deliveries received and not yet acked (bounded by PREFETCH).')),
    connectionUp: registry.add(new Gauge('consumer_connection_up', '1 while the dependency is usable, 0 otherwise.')),
  };
}

export type ConsumerMetrics = ReturnType<typeof createConsumerMetrics>;
