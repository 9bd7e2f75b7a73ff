import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient } from 'mongodb';
import { servicesMissing, serviceUrl, uniqueName } from '../../tests/support/services.ts';

describe('MongoDB-protocol smoke', { skip: servicesMissing('DATABASE_URL') }, () => {
  test('inserts a document and reads it back', async () => {
    const client = new MongoClient(serviceUrl('DATABASE_URL'), { serverSelectionTimeoutMS: 5000 });
    await client.connect();
    const db = client.db(uniqueName('smoke'));
    try {
      const when = new Date('2023-10-27T10:00:00Z');
      await db.collection('probe').insertOne({ _id: 'doc-1' as never, at: when });
      const found = await db.collection('probe').findOne({ _id: 'doc-1' as never });
      assert.deepEqual(found, { _id: 'doc-1', at: when });
    } finally {
      await db.dropDatabase();
      await client.close();
    }
  });
});
