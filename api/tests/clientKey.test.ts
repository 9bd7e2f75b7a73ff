import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { clientAddress, clientKey } from '../src/clientKey.ts';

describe('clientKey', () => {
  test('keys an IPv4 client by its address', () => {
    assert.equal(clientKey('203.0.113.7'), '203.0.113.7');
  });

  test('treats an IPv4-mapped IPv6 address as the IPv4 address', () => {
    assert.equal(clientKey('::ffff:203.0.113.7'), '203.0.113.7');
    assert.equal(clientKey('::ffff:cb00:7107'), '203.0.113.7');
  });

  test('keys IPv6 clients by their /64 prefix', () => {
    assert.equal(clientKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:db8:1:2::ffff'), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:0DB8:0001:0002:aaaa::1'), '2001:db8:1:2::/64');
  });

  test('puts addresses of one /64 under one key and a neighbouring /64 under another', () => {
    assert.equal(clientKey('2001:db8::1'), clientKey('2001:db8::ffff:1'));
    assert.notEqual(clientKey('2001:db8:0:1::1'), clientKey('2001:db8:0:2::1'));
  });

  test('handles the compressed forms ::1 and fe80::1%eth0', () => {
    assert.equal(clientKey('::1'), '0:0:0:0::/64');
    assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  });

  test('uses text that is no IP address as it is', () => {
    assert.equal(clientKey('unknown'), 'unknown');
  });
});

describe('clientAddress', () => {
  test('ignores X-Forwarded-For when no proxy is trusted', () => {
    assert.equal(clientAddress('10.0.0.1', '198.51.100.1', 0), '10.0.0.1');
  });

  test('takes the entry that many hops from the right when proxies are trusted', () => {
    const forwardedFor = '6.6.6.6, 198.51.100.1, 10.0.0.2';
    assert.equal(clientAddress('10.0.0.3', forwardedFor, 1), '10.0.0.2');
    assert.equal(clientAddress('10.0.0.3', forwardedFor, 2), '198.51.100.1');
  });

  test('a client cannot escape its key by prepending forged entries', () => {
    assert.equal(clientAddress('10.0.0.3', '1.1.1.1, 2.2.2.2, 198.51.100.1', 1), '198.51.100.1');
  });

  test('falls back to the leftmost entry when the list is shorter than the hops', () => {
    assert.equal(clientAddress('10.0.0.3', '198.51.100.1', 3), '198.51.100.1');
  });

  test('uses the socket address when a trusted proxy sent no header', () => {
    assert.equal(clientAddress('10.0.0.3', undefined, 1), '10.0.0.3');
  });
});
