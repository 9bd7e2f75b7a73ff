// Creates the consumer's MongoDB user: readWrite on its database only, stored in that database
// (so its URL says authSource=<database>). The official mongo image runs this file with mongosh,
// as the root user, once: on the first start with an empty data directory. The root user stays for
// administration; nothing of the application uses it.
// Names and password come from the mongodb service's environment (docker-compose.yml), never from
// here. On an existing volume this never runs; README "Configuration" says how to run it by hand.
const names = ['MONGO_DATABASE', 'MONGO_APP_USER', 'MONGO_APP_PASSWORD'];
const missing = names.filter((name) => !process.env[name]);
// Thrown, the entrypoint stops and the container exits: a database without its app user would
// only surface later, as the consumer's authentication failures.
if (missing.length > 0) throw new Error(`create-app-user.js: ${missing.join(', ')} unset`);

const database = process.env.MONGO_DATABASE;
db.getSiblingDB(database).createUser({
  user: process.env.MONGO_APP_USER,
  pwd: process.env.MONGO_APP_PASSWORD,
  // readWrite covers what the consumer does: insertMany, createIndex, ping.
  roles: [{ role: 'readWrite', db: database }],
});
print(`create-app-user.js: created ${process.env.MONGO_APP_USER} with readWrite on ${database}`);
