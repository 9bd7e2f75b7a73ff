import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { MongoBulkWriteError, MongoClient, MongoNetworkError, type Db, type WriteConcernError } from 'mongodb';
import type { StoredActivity } from '@event-tracker/shared';
import { CLIENT_OPTIONS, COLLECTION, createActivityStore, verdictsAfter } from '../src/activityStore.ts';
import { MAX_REASON_LENGTH, type Verdict } from '../src/services/verdict.ts';
import { servicesMissing, serviceUrl, uniqueName } from '../../tests/support/services.ts';
import { bulkError, FakeCollection, writeError } from './fakes.ts';

const concernError = { code: 64, errmsg: 'waiting for replication timed out' } as WriteConcernError;

/** Verdicts as short strings, so a batch reads at a glance: 'rejected:refused'. */
function kinds(verdicts: readonly Verdict[]): string[] {
  return verdicts.map((verdict) => (verdict.verdict === 'rejected' ? `rejected:${verdict.cause}` : verdict.verdict));
}

describe('verdictsAfter (what became of each document when insertMany threw)', () => {
  test('marks code 11000 as duplicate and the rest of the batch as stored', () => {
    assert.deepEqual(kinds(verdictsAfter(4, bulkError(2, [writeError(1, 11000), writeError(3, 11000)]))), ['stored', 'duplicate', 'stored', 'duplicate']);
  });

  test('rejects as refused a document the server will never take (121 validation, 2 bad value), quoting the code and message', () => {
    const verdicts = verdictsAfter(3, bulkError(1, [writeError(0, 121, 'Document failed validation'), writeError(2, 2, 'nested arrays are not supported')]));
    assert.deepEqual(verdicts, [
      { verdict: 'rejected', cause: 'refused', reason: 'The database refused the document (code 121): Document failed validation' },
      { verdict: 'stored' },
      { verdict: 'rejected', cause: 'refused', reason: 'The database refused the document (code 2): nested arrays are not supported' },
    ]);
  });

  test('retries a document failed with a transient code (not primary, shutting down, interrupted, timed out)', () => {
    for (const code of [10107, 11602, 11600, 91, 189, 64, 6, 7, 89, 9001, 13435]) {
      assert.deepEqual(kinds(verdictsAfter(2, bulkError(1, [writeError(1, code)]))), ['stored', 'retry'], `code ${code}`);
    }
  });

  test('gives each document of a mixed batch its own verdict', () => {
    const error = bulkError(2, [writeError(1, 11000), writeError(2, 121), writeError(3, 10107), writeError(5, 2)]);
    assert.deepEqual(kinds(verdictsAfter(6, error)), ['stored', 'duplicate', 'rejected:refused', 'retry', 'stored', 'rejected:refused']);
  });

  test('bounds the reason even when the server echoes a huge document in its message', () => {
    const [verdict] = verdictsAfter(1, bulkError(0, [writeError(0, 2, `invalid value: { "v": "${'😀'.repeat(10_000)}" }`)]));
    assert.equal(verdict?.verdict, 'rejected');
    assert.ok(verdict.reason.length <= MAX_REASON_LENGTH, `reason is ${verdict.reason.length} characters`);
    assert.ok(verdict.reason.isWellFormed());
    assert.match(verdict.reason, /^The database refused the document \(code 2\): invalid value/);
  });

  test('accepts writeErrors as a single object as well as an array', () => {
    const error = bulkError(1, []);
    error.writeErrors = writeError(0, 11000);
    assert.deepEqual(kinds(verdictsAfter(2, error)), ['duplicate', 'stored']);
  });

  test('retries the whole batch on a write-concern error, whatever the write errors say', () => {
    const alone = bulkError(2, []);
    alone.err = concernError; // how the driver reports a write-concern error with no write errors
    assert.deepEqual(kinds(verdictsAfter(2, alone)), ['retry', 'retry']);
    assert.deepEqual(kinds(verdictsAfter(3, bulkError(1, [writeError(0, 11000), writeError(2, 121)], concernError))), ['retry', 'retry', 'retry']);
  });

  test('retries documents that insertedCount does not account for', () => {
    // A connection lost mid-batch: the driver wraps it without per-document errors.
    assert.deepEqual(kinds(verdictsAfter(3, bulkError(0, [writeError(1, 11000)]))), ['retry', 'duplicate', 'retry']);
    assert.deepEqual(kinds(verdictsAfter(3, bulkError(0, [writeError(1, 121)]))), ['retry', 'rejected:refused', 'retry']);
  });

  test('retries the whole batch on any other error (network, timeout)', () => {
    assert.deepEqual(kinds(verdictsAfter(2, new MongoNetworkError('connection reset'))), ['retry', 'retry']);
    assert.deepEqual(kinds(verdictsAfter(1, new Error('anything'))), ['retry']);
  });
});

/** A document as the consumer writes it: `_id` is the event id; `source` only with WRITE_KEYS. */
function sent(id: string, source?: string, payload: Record<string, unknown> = { n: 1 }): StoredActivity {
  const at = new Date('2023-10-27T10:00:00Z');
  return { _id: id, id, userId: 'u1', eventType: 'click', timestamp: at, payload, ...(source === undefined ? {} : { source }), processedAt: at };
}

describe("ids per source (WRITE_KEYS), against a collection with the driver's error shapes", () => {
  test("stores an event whose id another source's event holds as <source>:<id>, keeping both, and names it", async () => {
    const collection = new FakeCollection();
    const store = createActivityStore(collection.db);
    assert.deepEqual(kinds((await store.insertBatch([sent('x', 'beta', { by: 'beta' })])).verdicts), ['stored']);
    const outcome = await store.insertBatch([sent('x', 'alpha', { by: 'alpha' }), sent('y', 'alpha')]);
    assert.deepEqual(kinds(outcome.verdicts), ['stored', 'stored']);
    assert.deepEqual(outcome.crossSource, ['alpha:x']);
    assert.deepEqual(collection.docs.get('x')?.payload, { by: 'beta' });
    assert.deepEqual(collection.docs.get('alpha:x'), { ...sent('x', 'alpha', { by: 'alpha' }), _id: 'alpha:x' });
  });

  test('a redelivery of the event stored apart is a duplicate, and is not named again', async () => {
    const collection = new FakeCollection();
    const store = createActivityStore(collection.db);
    await store.insertBatch([sent('x', 'beta')]);
    await store.insertBatch([sent('x', 'alpha')]);
    const again = await store.insertBatch([sent('x', 'alpha')]);
    assert.deepEqual(kinds(again.verdicts), ['duplicate']);
    assert.equal(again.crossSource, undefined);
    assert.deepEqual([...collection.docs.keys()], ['x', 'alpha:x']);
  });

  test('an id its own source already used is a duplicate, as without write keys', async () => {
    const collection = new FakeCollection();
    const store = createActivityStore(collection.db);
    await store.insertBatch([sent('x', 'alpha')]);
    const again = await store.insertBatch([sent('x', 'alpha', { other: true })]);
    assert.deepEqual(kinds(again.verdicts), ['duplicate']);
    assert.equal(again.crossSource, undefined);
    assert.deepEqual([...collection.docs.keys()], ['x']);
  });

  test('without a source a duplicate stays a duplicate, without reading the stored document', async () => {
    const collection = new FakeCollection();
    const store = createActivityStore(collection.db);
    await store.insertBatch([sent('x', 'alpha')]);
    // A read would fail and turn the verdict into retry.
    collection.failFind = true;
    assert.deepEqual(kinds((await store.insertBatch([sent('x')])).verdicts), ['duplicate']);
    assert.deepEqual([...collection.docs.keys()], ['x']);
  });

  test('an event with a source whose id an event stored before WRITE_KEYS holds is stored apart', async () => {
    const collection = new FakeCollection();
    const store = createActivityStore(collection.db);
    await store.insertBatch([sent('x')]);
    const outcome = await store.insertBatch([sent('x', 'alpha')]);
    assert.deepEqual(kinds(outcome.verdicts), ['stored']);
    assert.deepEqual(outcome.crossSource, ['alpha:x']);
  });

  test('two sources with the same id in one batch are both stored, the second apart; a source repeating it is a duplicate', async () => {
    const collection = new FakeCollection();
    const outcome = await createActivityStore(collection.db).insertBatch([sent('x', 'alpha'), sent('x', 'beta'), sent('x', 'beta'), sent('x', 'alpha')]);
    assert.deepEqual(kinds(outcome.verdicts), ['stored', 'stored', 'duplicate', 'duplicate']);
    assert.deepEqual(outcome.crossSource, ['beta:x']);
    assert.deepEqual([...collection.docs.keys()], ['x', 'beta:x']);
  });

  test('retries a duplicate with a source when whose the stored document is cannot be read, and stores the rest', async () => {
    const collection = new FakeCollection();
    const store = createActivityStore(collection.db);
    await store.insertBatch([sent('x', 'beta')]);
    collection.failFind = true;
    const outcome = await store.insertBatch([sent('x', 'alpha'), sent('y', 'alpha')]);
    assert.deepEqual(kinds(outcome.verdicts), ['retry', 'stored']);
    assert.ok(outcome.error instanceof MongoNetworkError);
    assert.deepEqual(kinds((await store.insertBatch([sent('x', 'alpha')])).verdicts), ['stored'], 'the retry stores it apart');
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
  let ferretdb: boolean;
  const databases: Db[] = [];
  before(async () => {
    client = new MongoClient(serviceUrl('DATABASE_URL'), CLIENT_OPTIONS);
    ferretdb = 'ferretdbVersion' in (await client.db('admin').admin().command({ buildInfo: 1 }));
  });
  after(async () => {
    for (const db of databases) await db.dropDatabase();
    await client.close();
  });

  /** A database of its own for each test, so one test's documents never show in another's counts. */
  function freshDb(): Db {
    const db = client.db(uniqueName('store'));
    databases.push(db);
    return db;
  }

  function doc(id: string, payload: Record<string, unknown> = { n: 1 }): StoredActivity {
    const at = new Date('2023-10-27T10:00:00Z');
    return { _id: id, id, userId: 'u1', eventType: 'click', timestamp: at, payload, processedAt: at };
  }

  async function storedIds(db: Db): Promise<unknown[]> {
    return (await db.collection(COLLECTION).find({}, { projection: { _id: 1 } }).sort({ _id: 1 }).toArray()).map((found) => found._id);
  }

  test('creates the two query indexes, and creating them again changes nothing', async () => {
    const db = freshDb();
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
    const db = freshDb();
    const store = createActivityStore(db);
    assert.deepEqual(kinds((await store.insertBatch([doc('a'), doc('b')])).verdicts), ['stored', 'stored']);
    assert.deepEqual(kinds((await store.insertBatch([doc('a'), doc('c'), doc('c'), doc('b')])).verdicts), ['duplicate', 'stored', 'duplicate', 'duplicate']);
    assert.deepEqual(await storedIds(db), ['a', 'b', 'c']);
  });

  test('rejects alone a document the driver cannot encode (a NUL in a key), storing its neighbours in the same call', async () => {
    const db = freshDb();
    const outcome = await createActivityStore(db).insertBatch([doc('good-1'), doc('nul', { 'a\u0000b': 1 }), doc('good-2')]);
    assert.deepEqual(kinds(outcome.verdicts), ['stored', 'rejected:unencodable', 'stored']);
    assert.match((outcome.verdicts[1] as { reason: string }).reason, /^The driver cannot encode the document: .*null bytes/);
    assert.deepEqual(await storedIds(db), ['good-1', 'good-2'], 'both stored by the one insertBatch call');
  });

  test('rejects alone a document too large for BSON (16.5 MiB, over the 16 MiB limit), storing its neighbours', async () => {
    const db = freshDb();
    const outcome = await createActivityStore(db).insertBatch([doc('good-1'), doc('huge', { text: 'x'.repeat(16.5 * 1024 * 1024) }), doc('good-2')]);
    assert.deepEqual(kinds(outcome.verdicts), ['stored', 'rejected:unencodable', 'stored']);
    assert.match((outcome.verdicts[1] as { reason: string }).reason, /^The document is \d+ bytes as BSON; MongoDB takes less than 16777216$/);
    assert.deepEqual(await storedIds(db), ['good-1', 'good-2']);
  });

  // The driver serializes each document into bson's 17 MiB scratch buffer before its size check,
  // so past 17 MiB it throws Node's RangeError (ERR_OUT_OF_RANGE), not a BSONError or
  // MongoInvalidArgumentError: the store retries the batch for ever. A 4 MB message put straight on
  // the queue ({"list":[0,0,...]}) passes parseDelivery and becomes such a document.
  test('rejects alone a document over 17 MiB as BSON, storing its neighbours', async () => {
    const db = freshDb();
    const outcome = await createActivityStore(db).insertBatch([doc('good-1'), doc('huge', { list: Array(2_000_000).fill(0) }), doc('good-2')]);
    assert.deepEqual(kinds(outcome.verdicts), ['stored', 'rejected:unencodable', 'stored']);
    assert.deepEqual(await storedIds(db), ['good-1', 'good-2']);
  });

  test('rejects every document of a batch the driver can encode none of, sending nothing', async () => {
    const db = freshDb();
    const outcome = await createActivityStore(db).insertBatch([doc('nul-1', { 'a\u0000': 1 }), doc('nul-2', { '\u0000': 2 })]);
    assert.deepEqual(kinds(outcome.verdicts), ['rejected:unencodable', 'rejected:unencodable']);
    assert.deepEqual(await storedIds(db), []);
  });

  test('rejects alone a document the server refuses (FerretDB: nested arrays, code 2; MongoDB: a validator, code 121), storing its neighbours', async () => {
    const db = freshDb();
    // FerretDB does not store nested arrays, which MongoDB does; MongoDB refuses what a validator forbids.
    if (!ferretdb) await db.createCollection(COLLECTION, { validator: { 'payload.forbidden': { $exists: false } } });
    const refused = ferretdb ? doc('refused', { v: [[1]] }) : doc('refused', { forbidden: true });
    const outcome = await createActivityStore(db).insertBatch([doc('good-1'), refused, doc('good-2')]);
    assert.deepEqual(kinds(outcome.verdicts), ['stored', 'rejected:refused', 'stored']);
    assert.match((outcome.verdicts[1] as { reason: string }).reason, new RegExp(`^The database refused the document \\(code ${ferretdb ? 2 : 121}\\): `));
    assert.deepEqual(await storedIds(db), ['good-1', 'good-2']);
  });

  test("the real driver's MongoBulkWriteError has the shape the tests' bulkError() builds, as far as verdictsAfter reads it", async () => {
    const collection = freshDb().collection<StoredActivity>(COLLECTION);
    await collection.insertOne(doc('taken'));
    const real = await collection.insertMany([doc('new-1'), doc('taken'), doc('new-2')], { ordered: false, writeConcern: { w: 'majority', j: true } }).then(
      () => assert.fail('a duplicate _id must fail the insert'),
      (error: unknown) => error,
    );
    const built = bulkError(2, [writeError(1, 11000, 'E11000 duplicate key error')]);

    // What verdictsAfter reads: the class, err, the write-concern error, insertedCount and
    // writeErrors as an array of { index, code, errmsg }.
    const shape = (error: unknown) => {
      assert.ok(error instanceof MongoBulkWriteError, `not a MongoBulkWriteError: ${String(error)}`);
      const writeErrors = error.writeErrors;
      assert.ok(Array.isArray(writeErrors), 'writeErrors is an array');
      return {
        err: error.err,
        writeConcernError: error.result?.getWriteConcernError(),
        insertedCount: error.insertedCount,
        writeErrors: writeErrors.map(({ index, code, errmsg }) => ({ index, code, errmsg: typeof errmsg })),
      };
    };
    assert.deepEqual(shape(real), { err: undefined, writeConcernError: undefined, insertedCount: 2, writeErrors: [{ index: 1, code: 11000, errmsg: 'string' }] });
    assert.deepEqual(shape(built), shape(real));
    assert.deepEqual(verdictsAfter(3, built), verdictsAfter(3, real));
    assert.deepEqual(kinds(verdictsAfter(3, real)), ['stored', 'duplicate', 'stored']);
  });

  // The same flow as the unit tests above, on the real server: its unordered insertMany, duplicate
  // errors and find by `_id` are what the store relies on (FerretDB and MongoDB answer alike here).
  test("keeps two sources' events with the same id, the later one as <source>:<id>; a redelivery of either is a duplicate", async () => {
    const db = freshDb();
    const store = createActivityStore(db);
    assert.deepEqual(kinds((await store.insertBatch([sent('x', 'beta', { by: 'beta' }), sent('y', 'beta')])).verdicts), ['stored', 'stored']);
    const apart = await store.insertBatch([sent('x', 'alpha', { by: 'alpha' }), sent('z', 'alpha'), sent('y', 'beta')]);
    assert.deepEqual(kinds(apart.verdicts), ['stored', 'stored', 'duplicate']);
    assert.deepEqual(apart.crossSource, ['alpha:x']);
    const again = await store.insertBatch([sent('x', 'alpha'), sent('x', 'beta')]);
    assert.deepEqual(kinds(again.verdicts), ['duplicate', 'duplicate']);
    assert.equal(again.crossSource, undefined);
    const stored = await db.collection<StoredActivity>(COLLECTION).find({ id: 'x' }).sort({ _id: 1 }).toArray();
    assert.deepEqual(
      stored.map(({ _id, id, source, payload }) => ({ _id, id, source, payload })),
      [
        { _id: 'alpha:x', id: 'x', source: 'alpha', payload: { by: 'alpha' } },
        { _id: 'x', id: 'x', source: 'beta', payload: { by: 'beta' } },
      ],
    );
  });

  test('answers ping while the server is up', async () => {
    assert.equal(await createActivityStore(freshDb()).ping(2_000), true);
  });
});
