// The `activities` collection through the official driver: indexes, idempotent batch inserts that
// give each document its verdict (stored, duplicate, rejected, retry), and a ping for health.
//
// `_id` is the event id, so a redelivery collides instead of duplicating. With WRITE_KEYS an id is
// deduplicated per source: a document whose id another source's event already holds is stored under
// `<source>:<id>` instead of being dropped as that event's duplicate (ARCHITECTURE.md, "Ids per source").
import { BSON, MongoBulkWriteError, MongoInvalidArgumentError, type Db, type MongoClientOptions } from 'mongodb';
import type { StoredActivity } from '@event-tracker/shared';
import { DUPLICATE, RETRY, STORED, rejection, type Verdict } from './services/verdict.ts';

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

/** The driver's own limit on one document, checked before it sends anything. */
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/**
 * Server error codes that say "not now" rather than "not this document": a primary stepping down
 * or shutting down mid-batch fails the remaining inserts with these (the driver's list of
 * retryable write errors, src/error.ts). Such a document is retried, never dead-lettered.
 */
const TRANSIENT_CODES = new Set([6, 7, 50, 63, 64, 89, 91, 150, 189, 262, 9001, 10107, 11600, 11602, 13388, 13435, 13436]);

export interface InsertOutcome {
  /** One verdict per document, in the order given: stored, duplicate, rejected or retry. */
  readonly verdicts: readonly Verdict[];
  /** The `_id`s (`<source>:<id>`) of documents stored apart because another source's event held their id. */
  readonly crossSource?: readonly string[];
  /** Why some or all documents were not stored, for the log. */
  readonly error?: unknown;
}

export interface ActivityStore {
  ensureIndexes(): Promise<void>;
  /** Never throws: every document gets a verdict. */
  insertBatch(docs: readonly StoredActivity[]): Promise<InsertOutcome>;
  /** True when the server answers `ping` within `timeoutMs`. */
  ping(timeoutMs: number): Promise<boolean>;
}

/** `w`: DATABASE_WRITE_CONCERN; with `j`, an acknowledged write is on disk as well. */
export function createActivityStore(db: Db, w: 'majority' | number = 'majority'): ActivityStore {
  const collection = db.collection<StoredActivity>(COLLECTION);

  async function insertBatch(docs: readonly StoredActivity[]): Promise<InsertOutcome> {
    return keepPerSource(docs, await insertAll(docs));
  }

  async function insertAll(docs: readonly StoredActivity[]): Promise<InsertOutcome> {
    try {
      // Unordered, so one bad document does not stop the rest; majority + journal (the default), so
      // an acknowledged write survives a primary failover and a crash, which is what lets us ack.
      await collection.insertMany([...docs], { ordered: false, writeConcern: { w, j: true } });
      return { verdicts: docs.map(() => STORED) };
    } catch (error) {
      if (!isEncodingError(error)) return { verdicts: verdictsAfter(docs.length, error), error };
      // The driver encodes every document before it sends any, so one it cannot encode fails the
      // whole call with nothing written. Reject that one alone and write the rest at once.
      const problems = docs.map(encodingProblem);
      const rest = docs.filter((_, index) => problems[index] === undefined);
      if (rest.length === docs.length) return { verdicts: docs.map(() => RETRY), error };
      const written = rest.length === 0 ? { verdicts: [] } : await insertAll(rest);
      let next = 0;
      const verdicts = problems.map((problem) => (problem === undefined ? (written.verdicts[next++] ?? RETRY) : rejection('unencodable', problem)));
      return { verdicts, error: written.error ?? error };
    }
  }

  /**
   * A duplicate that came with a source may be another source's event with the same id: the stored
   * document says whose it is. Another source's (or none's, stored before WRITE_KEYS) means this
   * event is new: it is written again under `<source>:<id>`, which no plain id can take since the
   * API's ids are UUIDs and a source name holds no ':'. Without a source a duplicate stays one.
   * Costs a read only when a batch meets a duplicate.
   */
  async function keepPerSource(docs: readonly StoredActivity[], outcome: InsertOutcome): Promise<InsertOutcome> {
    const suspects = docs.flatMap((doc, index) => (doc.source !== undefined && outcome.verdicts[index]?.verdict === 'duplicate' ? [index] : []));
    if (suspects.length === 0) return outcome;
    const verdicts = [...outcome.verdicts];
    let holders: Map<string, string | undefined>;
    try {
      const found = await collection.find({ _id: { $in: suspects.map((index) => docs[index]!._id) } }, { projection: { source: 1 } }).toArray();
      holders = new Map(found.map((doc) => [doc._id, doc.source]));
    } catch (error) {
      // Whose the stored documents are is unknown: write these again, the whole question with them.
      for (const index of suspects) verdicts[index] = RETRY;
      return { verdicts, error };
    }
    // Gone since the insert (deleted by hand): the next attempt can take the plain id again.
    for (const index of suspects) if (!holders.has(docs[index]!._id)) verdicts[index] = RETRY;
    const others = suspects.filter((index) => holders.has(docs[index]!._id) && holders.get(docs[index]!._id) !== docs[index]!.source);
    if (others.length === 0) return { ...outcome, verdicts };
    const apart = others.map((index) => ({ ...docs[index]!, _id: `${docs[index]!.source}:${docs[index]!.id}` }));
    const written = await insertAll(apart);
    others.forEach((index, n) => (verdicts[index] = written.verdicts[n] ?? RETRY));
    const crossSource = apart.filter((_, n) => written.verdicts[n]?.verdict === 'stored').map((doc) => doc._id);
    const error = written.error ?? outcome.error;
    return { verdicts, ...(crossSource.length > 0 ? { crossSource } : {}), ...(error === undefined ? {} : { error }) };
  }

  return {
    async ensureIndexes() {
      // One index per call: FerretDB 1.24 panics and drops the connection when one createIndexes
      // command names several indexes that all exist already, which is every start but the first.
      await collection.createIndex({ userId: 1, timestamp: -1 });
      await collection.createIndex({ eventType: 1, timestamp: -1 });
    },

    insertBatch,

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

/** What became of each of `count` documents after insertMany threw `error`. */
export function verdictsAfter(count: number, error: unknown): Verdict[] {
  const verdicts: Verdict[] = Array.from({ length: count }, () => RETRY);
  if (!(error instanceof MongoBulkWriteError)) return verdicts;
  // A write-concern error means no document is known to be durable: retry them all. Those already
  // inserted come back as duplicates, and the server waits for the write concern on that answer too.
  if (error.err ?? error.result?.getWriteConcernError()) return verdicts;

  const writeErrors = error.writeErrors === undefined ? [] : Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
  // Documents without a write error were inserted, but only if the server's count agrees: a driver
  // failure wrapped in MongoBulkWriteError (connection lost mid-batch) leaves their fate unknown.
  const accountedFor = error.insertedCount + writeErrors.length === count;
  verdicts.fill(accountedFor ? STORED : RETRY);
  for (const { index, code, errmsg } of writeErrors) {
    if (index < 0 || index >= count) continue;
    if (code === DUPLICATE_KEY) verdicts[index] = DUPLICATE;
    else if (TRANSIENT_CODES.has(code)) verdicts[index] = RETRY;
    else verdicts[index] = rejection('refused', `The database refused the document (code ${code}): ${errmsg ?? 'no message'}`);
  }
  return verdicts;
}

/**
 * The driver's errors for a document it will not send: BSON cannot encode it (BSONError), it is over
 * 16 MiB (MongoInvalidArgumentError), or over the 17 MiB buffer bson serializes into, which the
 * driver fills before its own size check (Node's RangeError ERR_OUT_OF_RANGE).
 */
function isEncodingError(error: unknown): boolean {
  return error instanceof BSON.BSONError || error instanceof MongoInvalidArgumentError || error instanceof RangeError;
}

/** Why the driver cannot send `doc`, or undefined when it can. */
function encodingProblem(doc: StoredActivity): string | undefined {
  try {
    const size = BSON.calculateObjectSize(doc);
    if (size >= MAX_DOCUMENT_BYTES) return `The document is ${size} bytes as BSON; MongoDB takes less than ${MAX_DOCUMENT_BYTES}`;
    BSON.serialize(doc);
    return undefined;
  } catch (error) {
    return `The driver cannot encode the document: ${(error as Error).message}`;
  }
}
