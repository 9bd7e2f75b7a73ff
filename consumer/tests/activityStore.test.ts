import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { MongoBulkWriteError, MongoClient, MongoNetworkError, type BulkWriteResult, type Db, type WriteConcernError, type WriteError } from 'mongodb';
import type { StoredActivity } from '@event-tracker/shared';
import { CLIENT_OPTIONS, COLLECTION, createActivityStore, statusesAfter } from '../src/activityStore.ts';
import { servicesMissing, serviceUrl, uniqueName } from '../../tests/support/services.ts';

// WriteError, WriteConcernError and BulkWriteResult are declared in the driver's types but not
// exported at run time, so the tests build objects of their shape.
const writeError = (index: number, code: number) => ({ index, code, errmsg: `E${code}` }) as WriteError;
const concernError = { code: 64, errmsg: 'waiting for replication timed out' } as WriteConcernError;

/** The error insertMany throws for an unordered batch, built the way the driver builds it. */
function bulkError(insertedCount: number, writeErrors: WriteError[], writeConcernError?: WriteConcernError) {
  const result = { insertedCount, getWriteConcernError: () => writeConcernError } as unknown as BulkWriteResult;
  return new MongoBulkWriteError({ message: 'bulk write failed', code: writeErrors[0]?.code ?? 0, writeErrors }, result);
}

describe('statusesAfter (what a failed insertMany stored)', () => {
  test('marks code 11000 duplicates as stored-already and the rest of the batch as stored', () => {
    assert.deepEqual(statusesAfter(4, bulkError(2, [writeError(1, 11000), writeError(3, 11000)])), ['stored', 'duplicate', 'stored', 'duplicate']);
  });

  test('marks other write errors as failed, to be retried alone', () => {
    assert.deepEqual(statusesAfter(3, bulkError(1, [writeError(0, 11000), writeError(2, 121)])), ['duplicate', 'stored', 'failed']);
  });

  test('accepts writeErrors as a single object as well as an array', () => {
    const error = bulkError(1, []);
    error.writeErrors = writeError(0, 11000);
    assert.deepEqual(statusesAfter(2, error), ['duplicate', 'stored']);
  });

  test('treats a write-concern error as a failure of the whole batch', () => {
    const alone = bulkError(2, []);
    alone.err = concernError; // how the driver reports a write-concern error with no write errors
    assert.deepEqual(statusesAfter(2, alone), ['failed', 'failed']);
    assert.deepEqual(statusesAfter(2, bulkError(1, [writeError(0, 11000)], concernError)), ['failed', 'failed']);
  });

  test('treats documents as failed when insertedCount does not account for them', () => {
    // A connection lost mid-batch: the driver wraps it without per-document errors.
    assert.deepEqual(statusesAfter(3, bulkError(0, [writeError(1, 11000)])), ['failed', 'duplicate', 'failed']);
  });

  test('treats any other error (network, timeout) as a failure of the whole batch', () => {
    assert.deepEqual(statusesAfter(2, new MongoNetworkError('connection reset')), ['failed', 'failed']);
    assert.deepEqual(statusesAfter(1, new Error('anything')), ['failed']);
  });
});

describe('activity store ping', () => {
  test('answers false, without waiting for server selection to give up, when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const client = new MongoClient(`mongodb://127.0.0.1:${port}/nothing`, { ...CLIENT_OPTIONS, serverSelectionTimeoutMS: 60_000 });
    try {
      assert.equal(await createActivityStore(client.db('nothing')).ping(200), false);
    } finally {
      await client.close();
    }
  });
});

describe('activity store against the MongoDB-protocol server', { skip: servicesMissing('DATABASE_URL') }, () => {
  let client: MongoClient;
  let db: Db;
  before(async () => {
    client = new MongoClient(serviceUrl('DATABASE_URL'), CLIENT_OPTIONS);
    db = client.db(uniqueName('store'));
  });
  after(async () => {
    await db.dropDatabase();
    await client.close();
  });

  function doc(id: string): StoredActivity {
    const at = new Date('2023-10-27T10:00:00Z');
    return { _id: id, id, userId: 'u1', eventType: 'click', timestamp: at, payload: { n: 1 }, processedAt: at };
  }

  test('creates the two query indexes, and creating them again changes nothing', async () => {
    const store = createActivityStore(db);
    await store.ensureIndexes();
    await store.ensureIndexes();
    const keys = (await db.collection(COLLECTION).listIndexes().toArray()).map((index) => index.key as unknown);
    assert.deepEqual(
      keys.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [{ _id: 1 }, { eventType: 1, timestamp: -1 }, { userId: 1, timestamp: -1 }],
    );
  });

  test('reports each document of a batch as stored or duplicate, by position', async () => {
    const store = createActivityStore(db);
    assert.deepEqual((await store.insertBatch([doc('a'), doc('b')])).statuses, ['stored', 'stored']);
    assert.deepEqual((await store.insertBatch([doc('a'), doc('c'), doc('c'), doc('b')])).statuses, ['duplicate', 'stored', 'duplicate', 'duplicate']);
    assert.equal(await db.collection(COLLECTION).countDocuments(), 3);
  });

  test('answers ping while the server is up', async () => {
    assert.equal(await createActivityStore(db).ping(2_000), true);
  });
});
