import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_FORWARDED_FOR_CHARS, clientAddress, clientKey, parseIpRange } from '../src/clientKey.ts';
import type { IpRange, TrustProxy } from '../src/clientKey.ts';
import { VALID_EVENT, postJson, startApp } from './helpers.ts';

const hops = (count: number): TrustProxy => ({ kind: 'hops', hops: count });
const proxies = (...entries: string[]): TrustProxy => ({ kind: 'list', ranges: entries.map((entry) => parseIpRange(entry)!) });
const key = (address: string): string => clientKey(address, 56);

describe('clientKey', () => {
  test('keys an IPv4 client by its address', () => {
    assert.equal(key('203.0.113.7'), '203.0.113.7');
    assert.equal(key('203.0.113.07'), '203.0.113.07', 'a leading zero is no IPv4 address: the text is used as it is');
  });

  test('treats an IPv4-mapped IPv6 address as the IPv4 address', () => {
    assert.equal(key('::ffff:203.0.113.7'), '203.0.113.7');
    assert.equal(key('::ffff:cb00:7107'), '203.0.113.7');
  });

  test('treats a NAT64 address (64:ff9b::/96) as the IPv4 address embedded in it', () => {
    assert.equal(key('64:ff9b::203.0.113.7'), '203.0.113.7');
    assert.equal(key('64:ff9b::cb00:7107'), '203.0.113.7');
    assert.equal(key('0064:FF9B:0000::cb00:7107'), '203.0.113.7');
    assert.equal(key('64:ff9b:1::cb00:7107'), '64:ff9b:1::/56', 'the local-use NAT64 prefix of RFC 8215 is not the well-known one');
  });

  test('keys IPv6 clients by their /56 network in RFC 5952 text by default', () => {
    assert.equal(key('2001:db8:0:ab12:3:4:5:6'), '2001:db8:0:ab00::/56');
    assert.equal(key('2001:0DB8:0000:AB34::1'), '2001:db8:0:ab00::/56');
    assert.equal(key('2001:db8:1:2ff::1'), '2001:db8:1:200::/56');
  });

  test('puts two addresses of one /56 under one key and a neighbouring /56 under another', () => {
    assert.equal(key('2001:db8:0:1::1'), key('2001:db8:0:ff:ffff::1'));
    assert.notEqual(key('2001:db8:0:ff::1'), key('2001:db8:0:100::1'));
  });

  test('a different prefix setting moves the boundary', () => {
    assert.notEqual(clientKey('2001:db8:0:1::1', 64), clientKey('2001:db8:0:2::1', 64));
    assert.equal(clientKey('2001:db8:0:1::1', 64), '2001:db8:0:1::/64');
    assert.equal(clientKey('2001:db8:0:100::1', 48), clientKey('2001:db8:0:ff00::1', 48));
    assert.equal(clientKey('2001:db8:0:100::1', 48), '2001:db8::/48');
    assert.equal(clientKey('2001:db8::1', 128), '2001:db8::1/128');
    assert.equal(clientKey('8000::1', 1), '8000::/1');
  });

  test('writes the network in canonical text: no leading zeros, the longest zero run as ::, the first on a tie', () => {
    assert.equal(clientKey('2001:db8:0:0:1:0:0:1', 128), '2001:db8::1:0:0:1/128');
    assert.equal(clientKey('2001:0:0:1:0:0:0:1', 128), '2001:0:0:1::1/128');
    assert.equal(clientKey('2001:db8:0:1:1:1:1:1', 128), '2001:db8:0:1:1:1:1:1/128', 'a single zero group stays');
    assert.equal(clientKey('1:2:3:4:5:6:7:8', 128), '1:2:3:4:5:6:7:8/128');
  });

  test('handles the compressed forms ::1 and fe80::1%eth0', () => {
    assert.equal(key('::1'), '::/56');
    assert.equal(key('fe80::1%eth0'), 'fe80::/56');
  });

  test('uses text that is no IP address as it is', () => {
    assert.equal(key('unknown'), 'unknown');
    assert.equal(key(''), '');
  });
});

describe('clientAddress with a hop count', () => {
  test('ignores X-Forwarded-For when no proxy is trusted', () => {
    assert.equal(clientAddress('10.0.0.1', '198.51.100.1', hops(0)), '10.0.0.1');
  });

  test('takes the entry that many hops from the right when the list is longer than the hops', () => {
    const forwardedFor = '6.6.6.6, 198.51.100.1, 10.0.0.2';
    assert.equal(clientAddress('10.0.0.3', forwardedFor, hops(1)), '10.0.0.2');
    assert.equal(clientAddress('10.0.0.3', forwardedFor, hops(2)), '198.51.100.1');
  });

  test('a client cannot escape its key by prepending forged entries', () => {
    assert.equal(clientAddress('10.0.0.3', '1.1.1.1, 2.2.2.2, 198.51.100.1', hops(1)), '198.51.100.1');
  });

  test('falls back to the leftmost entry when the list is shorter than the hops', () => {
    assert.equal(clientAddress('10.0.0.3', '198.51.100.1', hops(3)), '198.51.100.1');
  });

  test('uses the socket address when a trusted proxy sent no header', () => {
    assert.equal(clientAddress('10.0.0.3', undefined, hops(1)), '10.0.0.3');
  });

  test('reduces an entry with a port to its address, so each port is not a new client', () => {
    assert.equal(clientAddress('10.0.0.3', '203.0.113.7:5001', hops(1)), '203.0.113.7');
    assert.equal(clientAddress('10.0.0.3', '203.0.113.7:5002', hops(1)), '203.0.113.7');
    assert.equal(clientAddress('10.0.0.3', '203.0.113.7:5001, 10.0.0.2:80', hops(2)), '203.0.113.7');
  });

  test('reduces a bracketed IPv6 entry, with or without a port, to its address', () => {
    assert.equal(clientAddress('10.0.0.3', '[2001:db8::1]:443', hops(1)), '2001:db8::1');
    assert.equal(clientAddress('10.0.0.3', '[2001:db8::1]', hops(1)), '2001:db8::1');
    assert.equal(clientAddress('10.0.0.3', ' 2001:db8::1 ', hops(1)), '2001:db8::1');
  });

  test('uses the socket address when the chosen entry is unknown, empty or no IP address', () => {
    for (const forwardedFor of ['unknown', '', ' ', '198.51.100.1,', '6.6.6.6, unknown', 'hello:80', '[2001:db8::1', '203.0.113.7:', '203.0.113.07', '203.0.113.7:5001:1', '[203.0.113.7]x']) {
      assert.equal(clientAddress('10.0.0.3', forwardedFor, hops(1)), '10.0.0.3', JSON.stringify(forwardedFor));
    }
    assert.equal(clientAddress('10.0.0.3', '198.51.100.1, , 10.0.0.2', hops(2)), '10.0.0.3', 'an empty entry in the middle counts as a hop');
    assert.equal(clientAddress('10.0.0.3', 'unknown, 198.51.100.1', hops(1)), '198.51.100.1', 'entries left of the chosen one are never read');
  });

  test('never makes a 15,000-character entry a key', () => {
    const long = 'a'.repeat(15_000);
    assert.equal(clientAddress('10.0.0.3', long, hops(1)), '10.0.0.3');
    assert.equal(clientAddress('10.0.0.3', `${long}, 198.51.100.1`, hops(1)), '10.0.0.3', 'nor reads a header that long at all');
  });

  test(`ignores a header longer than ${MAX_FORWARDED_FOR_CHARS} characters and reads one of exactly that length`, () => {
    const header = (length: number) => `6.6.6.6${' '.repeat(length - '6.6.6.6, 198.51.100.1'.length)}, 198.51.100.1`;
    assert.equal(header(MAX_FORWARDED_FOR_CHARS).length, MAX_FORWARDED_FOR_CHARS);
    assert.equal(clientAddress('10.0.0.3', header(MAX_FORWARDED_FOR_CHARS), hops(1)), '198.51.100.1');
    assert.equal(clientAddress('10.0.0.3', header(MAX_FORWARDED_FOR_CHARS + 1), hops(1)), '10.0.0.3');
  });
});

describe('clientAddress with a list of trusted proxies', () => {
  const trusted = proxies('10.0.0.0/8', 'fd00::/8', '127.0.0.1');

  test('honours the header when the socket peer is in a trusted network', () => {
    assert.equal(clientAddress('10.1.2.3', '198.51.100.1', trusted), '198.51.100.1');
    assert.equal(clientAddress('fd12::1', '198.51.100.1', trusted), '198.51.100.1');
    assert.equal(clientAddress('127.0.0.1', '198.51.100.1', trusted), '198.51.100.1');
  });

  test('matches an IPv4-mapped socket peer, as a dual-stack listener reports it, against IPv4 entries', () => {
    assert.equal(clientAddress('::ffff:10.1.2.3', '198.51.100.1', trusted), '198.51.100.1');
    assert.equal(clientAddress('::ffff:127.0.0.1', '198.51.100.1', trusted), '198.51.100.1');
  });

  test('ignores the header when the socket peer is outside every trusted network', () => {
    assert.equal(clientAddress('198.51.100.9', '198.51.100.1', trusted), '198.51.100.9');
    assert.equal(clientAddress('127.0.0.2', '198.51.100.1', trusted), '127.0.0.2', 'a single address trusts only itself');
    assert.equal(clientAddress('fe00::1', '198.51.100.1', trusted), 'fe00::1');
    assert.equal(clientAddress('11.0.0.1', '198.51.100.1', trusted), '11.0.0.1');
  });

  test('skips a chain of trusted proxies from the right and takes the first address that is not one', () => {
    assert.equal(clientAddress('10.0.0.3', '6.6.6.6, 198.51.100.1, 10.0.0.2, [fd00::7]:8080, 127.0.0.1', trusted), '198.51.100.1');
  });

  test('takes the leftmost entry when every entry is a trusted proxy', () => {
    assert.equal(clientAddress('10.0.0.3', '10.0.0.1, 10.0.0.2', trusted), '10.0.0.1');
  });

  test('uses the socket address when the walk meets an entry that is no IP address', () => {
    assert.equal(clientAddress('10.0.0.3', '198.51.100.1, unknown, 10.0.0.2', trusted), '10.0.0.3');
    assert.equal(clientAddress('10.0.0.3', '198.51.100.1,', trusted), '10.0.0.3');
    assert.equal(clientAddress('10.0.0.3', 'unknown, 198.51.100.1', trusted), '198.51.100.1', 'entries left of the client are never read');
  });

  test('reduces entries with ports and brackets while walking', () => {
    assert.equal(clientAddress('10.0.0.3', '203.0.113.7:5001, 10.0.0.2:443', trusted), '203.0.113.7');
    assert.equal(clientAddress('10.0.0.3', '[2001:db8::1]:443, [fd00::1]', trusted), '2001:db8::1');
  });

  test('ignores an over-long header from a trusted peer', () => {
    assert.equal(clientAddress('10.0.0.3', `${'x'.repeat(15_000)}, 198.51.100.1`, trusted), '10.0.0.3');
  });
});

describe('parseIpRange', () => {
  const range = (text: string): IpRange | undefined => parseIpRange(text);

  test('reads addresses as ranges of one and CIDRs with their host bits cleared', () => {
    assert.deepEqual(range('127.0.0.1'), { family: 4, value: 0x7f00_0001n, prefix: 32 });
    assert.deepEqual(range('10.1.2.3/8'), { family: 4, value: 0x0a00_0000n, prefix: 8 });
    assert.deepEqual(range(' fd00::1/8 '), { family: 6, value: 0xfdn << 120n, prefix: 8 });
    assert.deepEqual(range('::1'), { family: 6, value: 1n, prefix: 128 });
    assert.deepEqual(range('0.0.0.0/0'), { family: 4, value: 0n, prefix: 0 });
  });

  test('stores an IPv4-mapped network as the IPv4 one', () => {
    assert.deepEqual(range('::ffff:10.0.0.0/104'), { family: 4, value: 0x0a00_0000n, prefix: 8 });
  });

  test('refuses what is no address or CIDR', () => {
    for (const text of ['', 'unknown', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/', '10.0.0.0/8/8', '10.0.0.0/-1', '10.0.0.0/0x8', '10.0.0', '[::1]', 'fe80::1%eth0', '10.0.0.1:80']) {
      assert.equal(range(text), undefined, JSON.stringify(text));
    }
  });
});

describe('the app keys clients with these rules', () => {
  const statuses = async (app: { url: string }, ...forwardedFor: string[]): Promise<number[]> => {
    const answers: number[] = [];
    for (const entry of forwardedFor) answers.push((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT, { 'x-forwarded-for': entry })).status);
    return answers;
  };

  test('behind a trusted proxy list, a client that changes its port is still one client', async (t) => {
    const app = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '1', TRUST_PROXY: '127.0.0.1' } });
    assert.deepEqual(await statuses(app, '203.0.113.7:5001', '203.0.113.7:5002', '203.0.113.8'), [202, 429, 202]);
  });

  test('a socket peer outside the list cannot choose its key with X-Forwarded-For', async (t) => {
    const app = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '1', TRUST_PROXY: '10.0.0.0/8' } });
    assert.deepEqual(await statuses(app, '203.0.113.7', '203.0.113.8'), [202, 429]);
  });

  test('IPv6 clients share a key per RATE_LIMIT_IPV6_PREFIX network', async (t) => {
    const by56 = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '1', TRUST_PROXY: '1' } });
    assert.deepEqual(await statuses(by56, '2001:db8:0:1::1', '[2001:db8:0:2::1]:443', '2001:db8:0:100::1'), [202, 429, 202]);
    const by64 = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '1', TRUST_PROXY: '1', RATE_LIMIT_IPV6_PREFIX: '64' } });
    assert.deepEqual(await statuses(by64, '2001:db8:0:1::1', '2001:db8:0:2::1', '2001:db8:0:1::2'), [202, 202, 429]);
  });
});
