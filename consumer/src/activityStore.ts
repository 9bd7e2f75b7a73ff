// The `activities` collection through the official driver: indexes, idempotent batch inserts that
// say which documents are stored, and a ping for health.
import { MongoBulkWriteError, type Db, type MongoClientOptions } from 'mongodb';
import type { StoredActivity } from '@event-tracker/shared';

export const COLLECTION = 'activities';

/** MongoDB's duplicate-key error code; the driver's messages vary, the code does not. */
const DUPLICATE_KEY = 11000;

/**
 * Client settings for a consumer that must notice an outage rather than hang in it: server selection
 * gives up after 5 s, and a socket that stops answering mid-write is abandoned after 30 s (the
 * write's outcome is then unknown, so it is retried, and a retry of a stored document is a duplicate).
 */
export const CLIENT_OPTIONS: MongoClientOptions = {
  serverSelectionTimeoutMS: 5_000,
  connectTimeoutMS: 5_000,
  socketTimeoutMS: 30_000,
  appName: 'event-tracker-consumer',
};

/** What became of one document of a batch. */
export type WriteStatus = 'stored' | 'duplicate' | 'failed';

export interface InsertOutcome {
  /** One status per document, in the order given. */
  readonly statuses: readonly WriteStatus[];
  /** Why some or all documents failed, for the log. */
  readonly error?: unknown;
}

export interface ActivityStore {
  ensureIndexes(): Promise<void>;
  /** Never throws: a failure is reported per document. */
  insertBatch(docs: readonly StoredActivity[]): Promise<InsertOutcome>;
  /** True when the server answers `ping` within `timeoutMs`. */
  ping(timeoutMs: number): Promise<boolean>;
}

export function createActivityStore(db: Db): ActivityStore {
  const collection = db.collection<StoredActivity>(COLLECTION);
  return {
    async ensureIndexes() {
      // One index per call: FerretDB 1.24 panics and drops the connection when one createIndexes
      // command names several indexes that all exist already, which is every start but the first.
      await collection.createIndex({ userId: 1, timestamp: -1 });
      await collection.createIndex({ eventType: 1, timestamp: -1 });
    },

    async insertBatch(docs) {
      try {
        // Unordered, so one bad document does not stop the rest; majority + journal, so an
        // acknowledged write survives a primary failover and a crash, which is what lets us ack.
        await collection.insertMany([...docs], { ordered: false, writeConcern: { w: 'majority', j: true } });
        return { statuses: docs.map(() => 'stored') };
      } catch (error) {
        return { statuses: statusesAfter(docs.length, error), error };
      }
    },

    async ping(timeoutMs) {
      try {
        // The driver's per-operation `timeoutMS` is deprecated and has no effect in 7.x; a signal does.
        await db.command({ ping: 1 }, { signal: AbortSignal.timeout(timeoutMs) });
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** Which of `count` documents are stored after insertMany threw `error`. */
export function statusesAfter(count: number, error: unknown): WriteStatus[] {
  const statuses: WriteStatus[] = Array.from({ length: count }, () => 'failed');
  if (!(error instanceof MongoBulkWriteError)) return statuses;
  // A write-concern error means no document is known to be durable: retry them all. Those already
  // inserted come back as duplicates, and the server waits for the write concern on that answer too.
  if (error.err ?? error.result?.getWriteConcernError()) return statuses;

  const writeErrors = error.writeErrors === undefined ? [] : Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
  // Documents without a write error were inserted, but only if the server's count agrees: a driver
  // failure wrapped in MongoBulkWriteError (connection lost mid-batch) leaves their fate unknown.
  const accountedFor = error.insertedCount + writeErrors.length === count;
  statuses.fill(accountedFor ? 'stored' : 'failed');
  for (const writeError of writeErrors) {
    if (writeError.index >= 0 && writeError.index < count) statuses[writeError.index] = writeError.code === DUPLICATE_KEY ? 'duplicate' : 'failed';
  }
  return statuses;
}
