// `npm run dlq:replay`, run as OPERATIONS.md says, against the real broker: dead letters put back on their
// queue by reason and count, byte for byte, with nothing lost and nothing duplicated, and a refused
// copy leaving its dead letter where it was.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import amqp, { type ConfirmChannel, type GetMessage } from 'amqplib';
import { assertTopology, deadLetterQueueName } from '@event-tracker/common/broker/topology.ts';
import { root, waitFor } from '../support/processes.ts';
import { deleteTopology, serviceUrl, servicesMissing, testTopology, uniqueName } from '../support/services.ts';

const script = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['dlq:replay']!;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the package.json script's command line, as `npm run dlq:replay -- <flags>` does. */
function replay(env: Record<string, string>, flags: readonly string[]): Promise<Run> {
  const [command, ...args] = script.split(' ');
  return new Promise((resolve) => {
    execFile(
      command!,
      [...args, ...flags],
      { cwd: root, env: { PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH}`, HOME: process.env.HOME ?? '/tmp', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

const JSON_REASON = 'The body is not valid JSON: Unexpected token } in JSON at position 12';
const OTHER_JSON_REASON = 'The body is not valid JSON: Unexpected end of JSON input';
const ARRAY_REASON = 'The database refused the document: nested arrays';

interface Letter {
  readonly id: string;
  /** Not UTF-8, so a copy that went through a string would not match. */
  readonly body: Buffer;
  readonly reason: string | undefined;
}

const letter = (reason: string | undefined): Letter => ({ id: randomUUID(), body: Buffer.concat([Buffer.from('{"x":'), randomBytes(16), Buffer.from([0xff, 0xfe])]), reason });

function publishProperties({ id, reason }: Letter) {
  const headers: Record<string, string> = { 'x-received-at': '2026-11-22T06:27:22.570Z' };
  if (reason !== undefined) Object.assign(headers, { 'x-rejection-reason': reason, 'x-rejected-at': '2026-11-22T06:38:27.572Z' });
  return { messageId: id, contentType: 'application/json', appId: 'event-tracker-api', timestamp: 1_796_000_000, persistent: true, headers };
}

async function readyCount(channel: ConfirmChannel, queue: string): Promise<number> {
  return (await channel.checkQueue(queue)).messageCount;
}

/** Every message of `queue`, acked: once the broker shows `expected` ready, so none is in flight. */
async function drain(channel: ConfirmChannel, queue: string, expected: number): Promise<GetMessage[]> {
  await waitFor(`${expected} messages ready in ${queue}`, async () => (await readyCount(channel, queue)) === expected, 10_000);
  const messages: GetMessage[] = [];
  for (let message = await channel.get(queue, { noAck: true }); message !== false; message = await channel.get(queue, { noAck: true })) messages.push(message);
  return messages;
}

/** Every message of `queue`, read and put back (nack with requeue), as the broker showed them. */
async function peek(channel: ConfirmChannel, queue: string, expected: number): Promise<GetMessage[]> {
  await waitFor(`${expected} messages ready in ${queue}`, async () => (await readyCount(channel, queue)) === expected, 10_000);
  const messages: GetMessage[] = [];
  for (let message = await channel.get(queue, { noAck: false }); message !== false; message = await channel.get(queue, { noAck: false })) messages.push(message);
  for (const message of messages) channel.nack(message, false, true);
  await waitFor(`${expected} messages back in ${queue}`, async () => (await readyCount(channel, queue)) === expected, 10_000);
  return messages;
}

/** Ids in order, after checking each body is byte for byte the one published under that id. */
function idsOf(messages: readonly GetMessage[], letters: readonly Letter[]): string[] {
  const byId = new Map(letters.map((item) => [item.id, item]));
  return messages.map((message) => {
    const sent = byId.get(String(message.properties.messageId));
    assert.ok(sent !== undefined, `unexpected message ${message.properties.messageId}`);
    assert.ok(message.content.equals(sent.body), `body of ${sent.id} changed`);
    return sent.id;
  });
}

/** A replayed copy: its properties kept, persistent, without the dead-letter headers. */
function assertCopy(message: GetMessage): void {
  const { properties } = message;
  assert.equal(properties.deliveryMode, 2, 'the copy must be persistent');
  assert.equal(properties.contentType, 'application/json');
  assert.equal(properties.appId, 'event-tracker-api');
  assert.equal(properties.timestamp, 1_796_000_000);
  assert.equal(properties.headers?.['x-received-at'], '2026-11-22T06:27:22.570Z');
  for (const header of ['x-rejection-reason', 'x-rejected-at', 'x-death', 'x-first-death-reason']) {
    assert.equal(properties.headers?.[header], undefined, `the copy keeps ${header}`);
  }
  // A quorum queue adds its own count to what it delivers: a fresh copy's, not the dead letter's.
  assert.ok([undefined, 0].includes(properties.headers?.['x-delivery-count']), `x-delivery-count ${properties.headers?.['x-delivery-count']}`);
}

const sortedIds = (letters: readonly Letter[]): string[] => letters.map(({ id }) => id).sort();

describe('npm run dlq:replay', { skip: servicesMissing('RABBITMQ_URL') }, () => {
  test('refuses a bad environment and bad flags with one line per problem, and never prints the URL', async () => {
    const run = await replay({ RABBITMQ_URL: 'http://guest:a-secret@127.0.0.1', QUEUE_NAME: 'amq.reserved' }, ['--max', '0', '--reason', 'a', '--reason-prefix', 'b', '--colour']);
    assert.equal(run.code, 2, run.stderr);
    assert.equal(run.stdout, '');
    assert.deepEqual(run.stderr.trimEnd().split('\n'), [
      'dlq:replay: RABBITMQ_URL must be an amqp:// or amqps:// URL',
      'dlq:replay: QUEUE_NAME must be 1 to 240 bytes and not start with "amq." (got "amq.reserved")',
      'dlq:replay: unknown option --colour (usage: [--reason TEXT | --reason-prefix TEXT] [--max N])',
      'dlq:replay: give --reason or --reason-prefix, not both',
      'dlq:replay: --max must be a whole number of at least 1 (got "0")',
    ]);
    assert.doesNotMatch(run.stderr, /a-secret/);
  });

  test('names a dead-letter queue that does not exist and exits 1', async () => {
    const run = await replay({ RABBITMQ_URL: serviceUrl('RABBITMQ_URL'), QUEUE_NAME: uniqueName('dlq_missing') }, []);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^dlq:replay: queue "dlq_missing_\S+\.dead" does not exist \(check QUEUE_NAME\); nothing was moved\n$/);
  });

  test('moves dead letters back by exact reason, by prefix and then all, each once and byte for byte, capped by --max', async (t) => {
    const queue = uniqueName('dlq_replay');
    const dead = deadLetterQueueName(queue);
    t.after(() => deleteTopology(queue));
    const connection = await amqp.connect(serviceUrl('RABBITMQ_URL'));
    t.after(() => connection.close());
    const channel = await connection.createConfirmChannel();
    await assertTopology(channel, testTopology(queue));

    // First, one the broker dead-letters itself (rejected without requeue): x-death, no reason of ours.
    const byBroker = letter(undefined);
    channel.sendToQueue(queue, byBroker.body, publishProperties(byBroker));
    await channel.waitForConfirms();
    const taken = await drainOne(channel, queue);
    channel.nack(taken, false, false);
    const [deadLettered] = await peek(channel, dead, 1);
    assert.ok(Array.isArray(deadLettered!.properties.headers?.['x-death']), 'the broker adds x-death');

    const json1 = letter(JSON_REASON);
    const otherJson = letter(OTHER_JSON_REASON);
    const array1 = letter(ARRAY_REASON);
    const json2 = letter(JSON_REASON);
    const array2 = letter(ARRAY_REASON);
    const json3 = letter(JSON_REASON);
    const ours = [json1, otherJson, array1, json2, array2, json3];
    for (const item of ours) channel.sendToQueue(dead, item.body, publishProperties(item));
    await channel.waitForConfirms();
    const everything = [byBroker, ...ours];
    const env = { RABBITMQ_URL: serviceUrl('RABBITMQ_URL'), QUEUE_NAME: queue, EVENTS_EXCHANGE: queue };

    // 1. Exact reason, at most 2: the first two JSON_REASON letters; the three examined before are put back.
    const first = await replay(env, ['--reason', JSON_REASON, '--max', '2']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, `moved 2 of 7 from ${dead} to ${queue}; left 5 in ${dead} (3 not matching --reason ${JSON.stringify(JSON_REASON)}); stopped at --max 2\n`);
    const moved1 = await drain(channel, queue, 2);
    assert.deepEqual(idsOf(moved1, everything), [json1.id, json2.id]);
    moved1.forEach(assertCopy);
    const left1 = await peek(channel, dead, 5);
    assert.deepEqual(idsOf(left1, everything).sort(), sortedIds([byBroker, otherJson, array1, array2, json3]));
    for (const message of left1) assert.ok(message.properties.headers?.['x-rejection-reason'] !== undefined || message.properties.messageId === byBroker.id, 'a dead letter lost its reason');

    // 2. By prefix, no cap: both JSON letters that are left.
    const second = await replay(env, ['--reason-prefix', 'The body is not valid JSON:']);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, `moved 2 of 5 from ${dead} to ${queue}; left 3 in ${dead} (3 not matching --reason-prefix "The body is not valid JSON:")\n`);
    const moved2 = await drain(channel, queue, 2);
    assert.deepEqual(idsOf(moved2, everything).sort(), sortedIds([otherJson, json3]));
    moved2.forEach(assertCopy);
    // The letters it did not move went back as fresh copies, reason kept: delivered now for the
    // first time, so no delivery count (a nack-requeue would have raised it with every run, and a
    // quorum queue drops a message past its delivery limit).
    const left2 = await peek(channel, dead, 3);
    for (const message of left2) {
      assert.ok([undefined, 0].includes(message.properties.headers?.['x-delivery-count']), `${message.properties.messageId}: x-delivery-count ${message.properties.headers?.['x-delivery-count']}`);
      assert.ok(message.properties.headers?.['x-rejection-reason'] !== undefined || message.properties.messageId === byBroker.id, 'a dead letter lost its reason');
    }

    // 3. Everything left, the broker's own dead letter included, which arrives without x-death.
    const third = await replay(env, []);
    assert.equal(third.code, 0, third.stderr);
    assert.equal(third.stdout, `moved 3 of 3 from ${dead} to ${queue}; left 0 in ${dead}\n`);
    const moved3 = await drain(channel, queue, 3);
    assert.deepEqual(idsOf(moved3, everything).sort(), sortedIds([byBroker, array1, array2]));
    moved3.forEach(assertCopy);

    assert.equal(await readyCount(channel, dead), 0);
    // Nothing lost, nothing twice: the three runs moved each of the seven exactly once.
    assert.deepEqual(idsOf([...moved1, ...moved2, ...moved3], everything).sort(), sortedIds(everything));
  });

  test('when the broker refuses a copy it exits 1 and the dead letters stay where they were', async (t) => {
    const queue = uniqueName('dlq_refused');
    const dead = deadLetterQueueName(queue);
    t.after(() => deleteTopology(queue));
    const connection = await amqp.connect(serviceUrl('RABBITMQ_URL'));
    t.after(() => connection.close());
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue(dead, { durable: true });
    // A queue that takes nothing: every publish to it is nacked (reject-publish at length 0).
    await channel.assertQueue(queue, { durable: true, arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
    const letters = [letter(JSON_REASON), letter(ARRAY_REASON)];
    for (const item of letters) channel.sendToQueue(dead, item.body, publishProperties(item));
    await channel.waitForConfirms();

    const run = await replay({ RABBITMQ_URL: serviceUrl('RABBITMQ_URL'), QUEUE_NAME: queue, EVENTS_EXCHANGE: queue }, []);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^dlq:replay: moved 0 of 2 .*; stopped: the broker did not confirm the copy \(.+\); nothing was lost\n$/);
    assert.equal(await readyCount(channel, queue), 0);
    const left = await drain(channel, dead, 2);
    assert.deepEqual(idsOf(left, letters).sort(), sortedIds(letters));
  });
});

/** The one message just published to `queue`, unacked. */
async function drainOne(channel: ConfirmChannel, queue: string): Promise<GetMessage> {
  await waitFor(`a message in ${queue}`, async () => (await readyCount(channel, queue)) === 1, 10_000);
  const message = await channel.get(queue, { noAck: false });
  assert.ok(message !== false);
  return message;
}
