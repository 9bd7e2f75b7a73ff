import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestPath } from '../src/requestPath.ts';

test('reads the path of origin-form and absolute-form targets, without query or fragment', () => {
  assert.equal(requestPath('/health'), '/health');
  assert.equal(requestPath('/health?verbose=1#x'), '/health');
  assert.equal(requestPath('http://consumer:8001/health?x'), '/health');
  assert.equal(requestPath('HTTPS://[::1]:8001/metrics'), '/metrics');
  assert.equal(requestPath('/'), '/');
});

test('gives no path, and never throws, for targets that have none', () => {
  for (const target of [undefined, '', '*', 'http://[', 'http://', 'example.com:443', 'health', '%zz', 'http://host', '\u0000']) {
    assert.equal(requestPath(target), '', String(target));
  }
});
