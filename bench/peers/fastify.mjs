// Fastify 5 with a JSON-schema body (its built-in Ajv), publishing like every other server here.
import Fastify from 'fastify';
import { event } from './eventSchema.mjs';
import { announce, closeOnSigterm, port, publishEvent } from './publish.mjs';

const app = Fastify({ bodyLimit: 1 << 20 });
app.post('/api/v1/activities', { schema: { body: event } }, async (request, reply) => {
  const id = await publishEvent(request.body);
  return reply.code(202).send({ status: 'accepted', id });
});

await app.listen({ port, host: '127.0.0.1' });
announce(app.server.address());
closeOnSigterm(() => app.close());
