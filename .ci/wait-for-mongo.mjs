// Waits (up to 60 s) until the MongoDB-protocol server at argv[2] answers `ping`.
import { MongoClient } from 'mongodb';

const url = process.argv[2];
const deadline = Date.now() + 60_000;
for (;;) {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 1000 });
  try {
    await client.db().admin().command({ ping: 1 });
    // Says which server the integration tests are about to run against.
    const info = await client.db().admin().command({ buildInfo: 1 });
    const server = 'ferretdbVersion' in info ? `FerretDB, speaking MongoDB ${info.version}` : `MongoDB ${info.version}`;
    console.log(`database answers ping: ${server}`);
    break;
  } catch (error) {
    if (Date.now() > deadline) throw error;
    await new Promise((resolve) => setTimeout(resolve, 250));
  } finally {
    await client.close();
  }
}
