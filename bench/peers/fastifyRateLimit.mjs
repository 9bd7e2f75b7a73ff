// The like-for-like Fastify: the JSON-schema body of fastify.mjs, plus what the API does beyond it
// that a Fastify user would add: @fastify/rate-limit (its in-process store, the limit raised so the
// load is never refused, its IETF draft headers on every answer) and a count of answers per status,
// taken in onResponse as a metrics plugin would. Publishing like every other server here.
import Fastify from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { event } from './eventSchema.mjs';
import { announce, closeOnSigterm, port, publishEvent } from './publish.mjs';

const app = Fastify({ bodyLimit: 1 << 20 });
await app.register(rateLimit, { global: true, max: 1_000_000_000, timeWindow: 60_000, enableDraftSpec: true });

/** Answers by status code, as a prom-client counter with a `status` label keeps them. */
const answers = new Map();
app.addHook('onResponse', (request, reply, done) => {
  answers.set(reply.statusCode, (answers.get(reply.statusCode) ?? 0) + 1);
  done();
});

app.post('/api/v1/activities', { schema: { body: event } }, async (request, reply) => {
  const id = await publishEvent(request.body);
  return reply.code(202).send({ status: 'accepted', id });
});

await app.listen({ port, host: '127.0.0.1' });
announce(app.server.address());
closeOnSigterm(() => app.close());
