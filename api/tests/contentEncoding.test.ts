// Compressed request bodies: each supported coding, a decompression bomb, corrupt and truncated
// data, unsupported and stacked codings. Over real sockets, with the fake publisher.
import { describe, test } from 'node:test';
import { once } from 'node:events';
import { request, type IncomingMessage } from 'node:http';
import assert from 'node:assert/strict';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import type { ProblemDetails } from '@event-tracker/shared';
import { contentEncoding } from '../src/contentEncoding.ts';
import { UnsupportedEncoding } from '../src/errors.ts';
import { startApp, VALID_EVENT } from './helpers.ts';

const EVENT = Buffer.from(JSON.stringify(VALID_EVENT));

function post(url: string, body: Uint8Array, encoding: string | undefined, contentType = 'application/json'): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (encoding !== undefined) headers['content-encoding'] = encoding;
  return fetch(`${url}/api/v1/activities`, { method: 'POST', headers, body });
}

describe('contentEncoding', () => {
  test('reads one supported coding, any case, and treats identity and no header as none', () => {
    assert.equal(contentEncoding('GZIP'), 'gzip');
    assert.equal(contentEncoding(' br '), 'br');
    assert.equal(contentEncoding('identity'), undefined);
    assert.equal(contentEncoding(undefined), undefined);
  });

  test('refuses an unsupported coding, and a coding given twice', () => {
    for (const header of ['compress', 'zstd', 'gzip, gzip', 'gzip, br', 'x-gzip']) assert.throws(() => contentEncoding(header), UnsupportedEncoding, header);
  });
});

describe('compressed bodies', () => {
  for (const [name, compress] of [['gzip', gzipSync], ['deflate', deflateSync], ['br', brotliCompressSync]] as const) {
    test(`accepts a ${name} body and publishes the event it holds`, async (t) => {
      const app = await startApp(t);
      const response = await post(app.url, compress(EVENT), name);
      assert.equal(response.status, 202);
      assert.deepEqual(app.publisher.published[0]!.message.payload, VALID_EVENT.payload);
    });
  }

  test('stops inflating a bomb at the limit: 50 MiB of zeros in a few KiB of gzip is 413, holding at most the limit', async (t) => {
    const app = await startApp(t, { env: { MAX_BODY_BYTES: '65536' } });
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024));
    assert.ok(bomb.length < 100 * 1024, `the bomb is ${bomb.length} bytes on the wire`);
    const response = await post(app.url, bomb, 'gzip');
    assert.equal(response.status, 413);
    assert.equal(response.headers.get('connection'), 'close');
    assert.equal(((await response.json()) as ProblemDetails).detail, 'The body must be at most 65536 bytes, as sent and once decompressed.');
    assert.equal(app.publisher.published.length, 0);
  });

  test('answers 413 once a chunked deflate body that inflates to nothing passes the limit on the wire, not at the timeout', async (t) => {
    const app = await startApp(t, { env: { MAX_BODY_BYTES: '65536', REQUEST_TIMEOUT_MS: '30000' } });
    const upload = request(`${app.url}/api/v1/activities`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'deflate' } });
    upload.on('error', () => {});
    const answered = once(upload, 'response') as Promise<[IncomingMessage]>;
    // A zlib header, then empty stored blocks (a sync flush each): valid deflate that inflates to no byte.
    upload.write(Buffer.from([0x78, 0x9c]));
    const emptyBlocks = Buffer.concat(Array.from({ length: 1024 }, () => Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff])));
    let sent = 2;
    const feed = () => {
      while (!upload.destroyed && sent < 4 * 65536 && upload.write(emptyBlocks)) sent += emptyBlocks.length;
    };
    upload.on('drain', feed);
    feed();
    const [response] = await answered;
    upload.destroy();
    assert.equal(response.statusCode, 413);
    assert.equal(response.headers.connection, 'close');
    assert.equal(app.publisher.published.length, 0);
  });

  test('answers 400 for corrupt data, truncated data, and raw deflate sent as deflate', async (t) => {
    const app = await startApp(t);
    const gzip = gzipSync(EVENT);
    const corrupt = Buffer.from(gzip);
    corrupt[12] = corrupt[12]! ^ 0xff;
    for (const [body, encoding] of [[corrupt, 'gzip'], [gzip.subarray(0, gzip.length - 6), 'gzip'], [EVENT, 'gzip'], [deflateRawSync(EVENT), 'deflate']] as const) {
      const response = await post(app.url, body, encoding);
      assert.equal(response.status, 400, `${encoding} ${body.length} bytes`);
      assert.match(((await response.json()) as ProblemDetails).detail, new RegExp(`^(The body is not valid ${encoding} data\\.|The body is not valid JSON)`));
    }
    assert.equal(app.publisher.published.length, 0);
  });

  test('answers 415 with Accept-Encoding for an unsupported or stacked coding, before reading the body', async (t) => {
    const app = await startApp(t);
    for (const encoding of ['compress', 'gzip, gzip']) {
      const response = await post(app.url, gzipSync(EVENT), encoding);
      assert.equal(response.status, 415);
      assert.equal(response.headers.get('accept-encoding'), 'gzip, deflate, br');
      assert.equal(((await response.json()) as ProblemDetails).type, '/problems/unsupported-encoding');
    }
  });

  test('reads a text/plain body as JSON, as navigator.sendBeacon sends it', async (t) => {
    const app = await startApp(t);
    assert.equal((await post(app.url, EVENT, undefined, 'text/plain;charset=UTF-8')).status, 202);
    assert.equal((await post(app.url, EVENT, undefined, 'text/html')).status, 415);
  });
});
