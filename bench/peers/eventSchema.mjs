// The event as JSON schema, for both Fastify peers (their built-in Ajv, `date-time` and `uuid` formats).
export const event = {
  type: 'object',
  required: ['userId', 'eventType', 'timestamp', 'payload'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', format: 'uuid' },
    userId: { type: 'string', minLength: 1, maxLength: 256 },
    eventType: { type: 'string', minLength: 1, maxLength: 128 },
    timestamp: { type: 'string', format: 'date-time' },
    payload: { type: 'object' },
  },
};
