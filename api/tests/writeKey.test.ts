// Write keys: parsing WRITE_KEYS, finding the key a request presents, and the constant-time check.
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { Unauthorized } from '../src/errors.ts';
import { authenticate, parseWriteKeys, presentedKey, type WriteKeys } from '../src/middlewares/writeKey.ts';

function keysOf(text: string): WriteKeys {
  const parsed = parseWriteKeys(text);
  assert.ok('keys' in parsed, `WRITE_KEYS=${text} should parse`);
  return parsed.keys;
}

function problemsOf(text: string): readonly string[] {
  const parsed = parseWriteKeys(text);
  assert.ok('problems' in parsed, `WRITE_KEYS=${text} should be refused`);
  return parsed.problems;
}

const basic = (user: string, password = '') => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const request = (headers: Record<string, string>, url = '/v1/batch') => ({ headers, url });

function refusal(keys: WriteKeys, req: ReturnType<typeof request>): Unauthorized {
  try {
    authenticate(keys, req);
  } catch (error) {
    assert.ok(error instanceof Unauthorized);
    return error;
  }
  assert.fail('the request should have been refused');
}

describe('parseWriteKeys', () => {
  test('reads name=key pairs, spaces around each part ignored, a key holding "=" kept whole, and keeps only digests', () => {
    const keys = keysOf(' web = k-web-1 ,ios.app=YWJj==,_batch-2=x');
    assert.deepEqual(keys.map(({ name }) => name), ['web', 'ios.app', '_batch-2']);
    assert.ok(keys.every(({ digest }) => digest.length === 32));
    assert.equal(JSON.stringify(keys).includes('k-web-1'), false);
    assert.equal(authenticate(keys, request({ 'x-write-key': 'YWJj==' })), 'ios.app');
  });

  test('names every bad entry by its position and never quotes the text, which may hold keys', () => {
    const problems = problemsOf('web=secret-one,secret-two,bad name=k,empty=,web=secret-three,other=secret-one');
    assert.deepEqual(problems, [
      'WRITE_KEYS entry 2 must be name=key, the name of letters, digits, "_", "." or "-" and the key not empty',
      'WRITE_KEYS entry 3 must be name=key, the name of letters, digits, "_", "." or "-" and the key not empty',
      'WRITE_KEYS entry 4 must be name=key, the name of letters, digits, "_", "." or "-" and the key not empty',
      'WRITE_KEYS entries 1 and 5 have the same name: names must be unique',
      'WRITE_KEYS entries 1 and 6 have the same key: keys must be unique',
    ]);
    assert.equal(problems.join('\n').includes('secret'), false);
  });
});

describe('presentedKey', () => {
  test('reads Basic (the key as user name), Bearer, X-Write-Key and the writeKey query parameter', () => {
    assert.equal(presentedKey(request({ authorization: basic('k1') })), 'k1');
    assert.equal(presentedKey(request({ authorization: basic('k1', 'ignored') })), 'k1');
    assert.equal(presentedKey(request({ authorization: 'bearer k2' })), 'k2');
    assert.equal(presentedKey(request({ 'x-write-key': 'k3' })), 'k3');
    assert.equal(presentedKey(request({}, '/v1/page?a=1&writeKey=k%204')), 'k 4');
    assert.equal(presentedKey(request({}, '/v1/page?a=1')), undefined);
    assert.equal(presentedKey(request({})), undefined);
  });

  test('takes Authorization first, then X-Write-Key, then the query, and counts another scheme as a wrong key', () => {
    assert.equal(presentedKey(request({ authorization: 'Bearer a', 'x-write-key': 'b' }, '/v1/batch?writeKey=c')), 'a');
    assert.equal(presentedKey(request({ 'x-write-key': 'b' }, '/v1/batch?writeKey=c')), 'b');
    assert.equal(presentedKey(request({ authorization: 'Digest username="a"' })), '');
  });
});

describe('authenticate', () => {
  const keys = keysOf('web=k-web,ios=k-ios,backend=k-backend');

  test('answers with the name of the key, however it is given', () => {
    assert.equal(authenticate(keys, request({ authorization: basic('k-web') })), 'web');
    assert.equal(authenticate(keys, request({ authorization: 'Bearer k-ios' })), 'ios');
    assert.equal(authenticate(keys, request({ 'x-write-key': 'k-backend' })), 'backend');
    assert.equal(authenticate(keys, request({}, '/api/v1/activities?writeKey=k-web')), 'web');
  });

  test('refuses a missing key and a wrong one with 401 and a Basic challenge, repeating nothing that was sent', () => {
    const missing = refusal(keys, request({}));
    const wrong = refusal(keys, request({ authorization: basic('k-web-but-longer') }));
    for (const error of [missing, wrong]) {
      assert.equal(error.status, 401);
      assert.equal(error.code, 'unauthorized');
      assert.equal(error.headers['WWW-Authenticate'], 'Basic realm="event-tracker"');
    }
    assert.match(missing.message, /^Send a write key/);
    assert.equal(wrong.message.includes('k-web'), false);
    refusal(keys, request({ authorization: 'Bearer ' }));
    refusal(keys, request({ 'x-write-key': '' }));
  });

  test('compares the digest against every configured key, in constant time, even when the first matches', (t: TestContext) => {
    const compare = t.mock.method(crypto, 'timingSafeEqual');
    syncBuiltinESMExports();
    t.after(() => {
      compare.mock.restore();
      syncBuiltinESMExports();
    });
    assert.equal(authenticate(keys, request({ 'x-write-key': 'k-web' })), 'web');
    assert.equal(compare.mock.callCount(), 3);
    refusal(keys, request({ 'x-write-key': 'nope' }));
    assert.equal(compare.mock.callCount(), 6);
    assert.ok(compare.mock.calls.every(({ arguments: [a, b] }) => (a as Buffer).length === 32 && (b as Buffer).length === 32));
  });
});
