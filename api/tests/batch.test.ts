// POST /api/v1/activities/batch with the fake publisher: the batch contract (errors indexed, limits,
// all or nothing), ids echoed in order, and a failure halfway answered 503 with every id.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProblemDetails } from '@event-tracker/shared';
import { validateBatch } from '../src/validation.ts';
import { InvalidEvent } from '../src/errors.ts';
import { postJson, startApp, VALID_EVENT } from './helpers.ts';

const URL_PATH = '/api/v1/activities/batch';
const ID_A = '5f0c6f3e-8a6b-4c1e-9f3a-2d7b1e4c9a00';
const ID_B = '0b9f4c4e-3c1a-4e55-9a53-5a1f6d1f2b7e';

function problemOf(body: unknown, maxEvents = 500): InvalidEvent {
  try {
    validateBatch(body, maxEvents);
  } catch (error) {
    assert.ok(error instanceof InvalidEvent);
    return error;
  }
  assert.fail('the batch should have been refused');
}

describe('validateBatch', () => {
  test('reports every problem of every event as batch[<i>].<field>', () => {
    const error = problemOf({ batch: [VALID_EVENT, { ...VALID_EVENT, timestamp: 'today', extra: 1 }, 'text', { ...VALID_EVENT, payload: { 'a.b': 1 } }] });
    assert.deepEqual(
      error.errors!.map(({ field }) => field),
      ['batch[1].extra', 'batch[1].timestamp', 'batch[2]', 'batch[3].payload.a.b'],
    );
    assert.match(error.message, /4 problems.*Nothing of it was accepted/);
  });

  test('bounds what a 400 echoes: at most 20 problems, however many events are bad', () => {
    const error = problemOf({ batch: Array.from({ length: 100 }, () => ({ ...VALID_EVENT, userId: '' })) });
    assert.equal(error.errors!.length, 20);
    assert.match(error.message, /100 problems/);
  });

  test('refuses an empty batch, one over BATCH_MAX_EVENTS, and bodies that are not {"batch": [...]}', () => {
    assert.match(problemOf({ batch: [] }).message, /empty/);
    assert.match(problemOf({ batch: [VALID_EVENT, VALID_EVENT, VALID_EVENT] }, 2).message, /holds 3 events; send at most 2/);
    assert.match(problemOf([VALID_EVENT]).message, /got an array/);
    assert.match(problemOf({ events: [VALID_EVENT] }).message, /"batch" as a undefined/);
    assert.deepEqual(problemOf({ batch: [VALID_EVENT], extra: true }).errors, [{ field: 'extra', message: 'is not a known field (expected batch)' }]);
  });

  test('lower-cases client ids and keeps their order', () => {
    const events = validateBatch({ batch: [{ ...VALID_EVENT, id: ID_A.toUpperCase() }, VALID_EVENT] }, 500);
    assert.equal(events[0]!.id, ID_A);
    assert.equal(events[1]!.id, undefined);
  });
});

describe('POST /api/v1/activities/batch', () => {
  test('answers 202 with the ids in request order once every event is published, each as its own message', async (t) => {
    const app = await startApp(t);
    const response = await postJson(`${app.url}${URL_PATH}`, { batch: [{ ...VALID_EVENT, id: ID_A }, VALID_EVENT, { ...VALID_EVENT, id: ID_B }] });
    assert.equal(response.status, 202);
    const body = (await response.json()) as { status: string; ids: string[] };
    assert.equal(body.status, 'accepted');
    assert.equal(body.ids.length, 3);
    assert.equal(body.ids[0], ID_A);
    assert.equal(body.ids[2], ID_B);
    assert.deepEqual(app.publisher.published.map(({ message }) => message.id), body.ids);
    assert.deepEqual(app.publisher.published[1]!.message, { id: body.ids[1], ...VALID_EVENT });
  });

  test('publishes nothing of a batch with one bad event', async (t) => {
    const app = await startApp(t);
    const response = await postJson(`${app.url}${URL_PATH}`, { batch: [VALID_EVENT, { ...VALID_EVENT, userId: '   ' }] });
    assert.equal(response.status, 400);
    assert.deepEqual(((await response.json()) as ProblemDetails).errors, [{ field: 'batch[1].userId', message: 'must not be blank' }]);
    assert.equal(app.publisher.published.length, 0);
  });

  test('answers 503 with every id when an event fails halfway, and says a retry of the whole batch with them is stored once', async (t) => {
    const app = await startApp(t);
    app.publisher.failWith('refused', 'the broker refused the event', 1);
    const response = await postJson(`${app.url}${URL_PATH}`, { batch: [{ ...VALID_EVENT, id: ID_A }, VALID_EVENT, VALID_EVENT] });
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('retry-after'), '5');
    const problem = (await response.json()) as ProblemDetails;
    assert.equal(problem.type, '/problems/queue-unavailable');
    assert.equal(problem.ids?.length, 3);
    assert.equal(problem.ids?.[0], ID_A);
    assert.equal(problem.detail, 'The batch was not accepted: the broker refused the event. Retry the whole batch with the ids in "ids"; each event is stored once.');
    assert.deepEqual(app.publisher.published.map(({ message }) => message.id), [ID_A], 'the first went through before the failure');
  });

  test('counts as one request for the rate limiter, whatever its size', async (t) => {
    const app = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '2' } });
    const batch = { batch: Array.from({ length: 50 }, () => VALID_EVENT) };
    assert.equal((await postJson(`${app.url}${URL_PATH}`, batch)).status, 202);
    assert.equal((await postJson(`${app.url}${URL_PATH}`, batch)).status, 202);
    assert.equal((await postJson(`${app.url}${URL_PATH}`, batch)).status, 429);
    assert.equal(app.publisher.published.length, 100);
  });

  test('reads its body up to MAX_BATCH_BODY_BYTES, not MAX_BODY_BYTES', async (t) => {
    const app = await startApp(t, { env: { MAX_BODY_BYTES: '200', MAX_BATCH_BODY_BYTES: '2000' } });
    assert.equal((await postJson(`${app.url}${URL_PATH}`, { batch: [VALID_EVENT, VALID_EVENT, VALID_EVENT] })).status, 202);
    assert.equal((await postJson(`${app.url}${URL_PATH}`, { batch: Array.from({ length: 20 }, () => VALID_EVENT) })).status, 413);
  });

  test('takes each event up to MAX_BODY_BYTES as it sits in the body, and refuses the batch naming the first one over it', async (t) => {
    const app = await startApp(t, { env: { MAX_BODY_BYTES: '200', MAX_BATCH_BODY_BYTES: '2000' } });
    const large = { ...VALID_EVENT, payload: { note: 'x'.repeat(200) } };
    const response = await postJson(`${app.url}${URL_PATH}`, { batch: [VALID_EVENT, large, large] });
    assert.equal(response.status, 413);
    const problem = (await response.json()) as ProblemDetails;
    assert.equal(problem.type, '/problems/body-too-large');
    assert.equal(problem.detail, 'batch[1] must be at most 200 bytes, as an event posted alone; nothing of the batch was accepted.');
    // Spaces around an event count: they are what the parser reads.
    const padded = `{"batch":[${JSON.stringify(VALID_EVENT)}${' '.repeat(200)}]}`;
    assert.equal((await postJson(`${app.url}${URL_PATH}`, padded)).status, 413);
  });

  test('refuses a body that holds no batch array, past MAX_BODY_BYTES, unparsed', async (t) => {
    const app = await startApp(t, { env: { MAX_BODY_BYTES: '200', MAX_BATCH_BODY_BYTES: '2000' } });
    for (const body of [{ events: [VALID_EVENT, VALID_EVENT] }, { batch: [VALID_EVENT], other: 'x'.repeat(300) }]) {
      const response = await postJson(`${app.url}${URL_PATH}`, body);
      assert.equal(response.status, 400);
      assert.equal(((await response.json()) as ProblemDetails).detail, 'The body must be a JSON object {"batch": [event, ...]}, each event within the limit of one posted alone.');
    }
    // Small enough to read whole: the answer names what is wrong, as before.
    const small = await postJson(`${app.url}${URL_PATH}`, { events: [] });
    assert.match(((await small.json()) as ProblemDetails).detail, /got "batch" as/);
  });

  test('names the event whose JSON is malformed', async (t) => {
    const app = await startApp(t);
    const response = await postJson(`${app.url}${URL_PATH}`, `{"batch":[${JSON.stringify(VALID_EVENT)},{"userId":}]}`);
    assert.equal(response.status, 400);
    assert.match(((await response.json()) as ProblemDetails).detail, /^The body is not valid JSON: .* \(in batch\[1\]\)\.$/);
  });
});
