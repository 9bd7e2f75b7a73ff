// Who a request counts against: the address that sent it (X-Forwarded-For only as far as trusted
// proxies vouch for it) and the key it is limited under. IPv4 clients by address; IPv6 clients by a
// prefix (default /56, as express-rate-limit), since one subscriber holds a /64 or more and could
// otherwise rotate addresses to escape the limit.
import { isIP } from 'node:net';

/** An address as a number: 32 bits for IPv4, 128 for IPv6. */
interface Ip {
  readonly family: 4 | 6;
  readonly value: bigint;
}

/** A TRUST_PROXY entry: an address is a range of one (/32 or /128). `value` has its host bits cleared. */
export interface IpRange extends Ip {
  readonly prefix: number;
}

/** TRUST_PROXY: a hop count (0 ignores X-Forwarded-For), or the proxies' addresses and networks. */
export type TrustProxy =
  | { readonly kind: 'hops'; readonly hops: number }
  | { readonly kind: 'list'; readonly ranges: readonly IpRange[] };

/**
 * A longer X-Forwarded-For is ignored whole. 40 hops of the longest entry ("[ipv6]:port", 47
 * characters, plus ", ") fit; past that the header is a client's padding, not a proxy chain.
 */
export const MAX_FORWARDED_FOR_CHARS = 2_048;

/**
 * The client's address, with any port and brackets removed. X-Forwarded-For counts only as far as
 * trusted proxies appended to it (entries further left may be forged by the client):
 * - `hops` N > 0: the entry N from the right; a list shorter than N yields its leftmost entry.
 * - `list`: only when the socket peer is a listed proxy; then the rightmost entry that is not one
 *   (all of them are: the leftmost).
 * The socket address is used when there is no header, it is over-long, or that entry is no IP address.
 */
export function clientAddress(remoteAddress: string | undefined, forwardedFor: string | undefined, trust: TrustProxy): string {
  const socket = remoteAddress ?? '';
  if (forwardedFor === undefined || forwardedFor.length > MAX_FORWARDED_FOR_CHARS) return socket;
  const entries = forwardedFor.split(',');
  if (trust.kind === 'hops') {
    if (trust.hops === 0) return socket;
    return entryAddress(entries[Math.max(0, entries.length - trust.hops)]!) ?? socket;
  }
  if (!inRanges(socket, trust.ranges)) return socket;
  for (let i = entries.length - 1; i >= 0; i--) {
    const address = entryAddress(entries[i]!);
    if (address === undefined) return socket;
    if (i === 0 || !inRanges(address, trust.ranges)) return address;
  }
  return socket;
}

/** True when `address` is one of TRUST_PROXY's listed proxies; a hop count names none. */
export function isTrustedProxy(address: string, trust: TrustProxy): boolean {
  return trust.kind === 'list' && inRanges(address, trust.ranges);
}

/**
 * The start-up warning a hop count earns: it believes the header from any peer, so a client that
 * reaches the API directly picks the address it is limited under (one socket can spray millions).
 */
export function trustProxyWarning(trust: TrustProxy): string | undefined {
  if (trust.kind !== 'hops' || trust.hops === 0) return undefined;
  return `TRUST_PROXY is a hop count (${trust.hops}): a client that reaches the API directly can forge X-Forwarded-For and choose the address it is rate limited under; set TRUST_PROXY to the proxies' addresses or CIDRs instead`;
}

/**
 * The rate-limit key for an address: IPv4 (an IPv4-mapped or NAT64 `64:ff9b::/96` address counts as
 * the IPv4 address inside it) as dotted quad; IPv6 as its `ipv6Prefix` network in RFC 5952 text,
 * e.g. `2001:db8:0:ab00::/56`, so every spelling of one network is one key. Other text is used as it is.
 */
export function clientKey(address: string, ipv6Prefix: number): string {
  // The common case, and already in its one spelling: isIP takes no leading zeros in a dotted quad.
  if (isIP(address) === 4) return address;
  const parsed = parseIp(address);
  if (parsed === undefined) return address;
  const ip = unmapped(parsed, true);
  if (ip.family === 4) return formatIp(ip);
  return `${formatIp({ family: 6, value: network(ip.value, 128, ipv6Prefix) })}/${ipv6Prefix}`;
}

/** A TRUST_PROXY entry ("10.0.0.1", "10.0.0.0/8", "fd00::/8"), or undefined when it is none. */
export function parseIpRange(text: string): IpRange | undefined {
  const [address = '', prefixText, ...rest] = text.trim().split('/');
  const parsed = address.includes('%') || rest.length > 0 ? undefined : parseIp(address);
  if (parsed === undefined) return undefined;
  const width = parsed.family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? width : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= width)) return undefined;
  // Peers are matched with IPv4-mapped addresses unmapped, so a mapped network is stored as IPv4.
  if (prefix >= 96 && parsed.family === 6 && unmapped(parsed, false).family === 4) {
    return { family: 4, value: network(parsed.value & 0xffff_ffffn, 32, prefix - 96), prefix: prefix - 96 };
  }
  return { family: parsed.family, value: network(parsed.value, width, prefix), prefix };
}

/** An X-Forwarded-For entry's address: "203.0.113.7:5001", "[2001:db8::1]:443" and "[2001:db8::1]" included. */
function entryAddress(entry: string): string | undefined {
  const text = entry.trim();
  const candidate = /^\[([^\]]*)\](?::\d{1,5})?$/.exec(text)?.[1] ?? /^([\d.]+):\d{1,5}$/.exec(text)?.[1] ?? text;
  return isIP(candidate) === 0 ? undefined : candidate;
}

function inRanges(address: string, ranges: readonly IpRange[]): boolean {
  const parsed = parseIp(address);
  if (parsed === undefined) return false;
  const ip = unmapped(parsed, false);
  const width = ip.family === 4 ? 32 : 128;
  return ranges.some((range) => range.family === ip.family && network(ip.value, width, range.prefix) === range.value);
}

/** `value` with all but its first `prefix` of `width` bits cleared. */
function network(value: bigint, width: number, prefix: number): bigint {
  const hostBits = BigInt(width - prefix);
  return (value >> hostBits) << hostBits;
}

const IPV4_MAPPED = 0xffffn; // ::ffff:0:0/96, RFC 4291 2.5.5.2
const NAT64 = 0x64_ff9b_0000_0000_0000_0000n; // 64:ff9b::/96, RFC 6052 2.1

/** The IPv4 address inside an IPv4-mapped (and, with `nat64`, a NAT64) address; others as they are. */
function unmapped(ip: Ip, nat64: boolean): Ip {
  const upper = ip.value >> 32n;
  if (ip.family === 6 && (upper === IPV4_MAPPED || (nat64 && upper === NAT64))) return { family: 4, value: ip.value & 0xffff_ffffn };
  return ip;
}

function parseIp(text: string): Ip | undefined {
  const family = isIP(text);
  if (family === 4) return { family, value: text.split('.').reduce((value, octet) => (value << 8n) | BigInt(octet), 0n) };
  if (family === 6) return { family, value: ipv6Groups(text).reduce((value, group) => (value << 16n) | BigInt(group), 0n) };
  return undefined;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, embedded IPv4 and zone handled). */
function ipv6Groups(address: string): number[] {
  const withoutZone = address.split('%')[0]!;
  const [head = '', tail] = withoutZone.split('::');
  const parse = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [parseInt(group, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** Dotted quad, or RFC 5952 text: lower-case hex, no leading zeros, the longest run of 2+ zero groups as "::". */
function formatIp(ip: Ip): string {
  if (ip.family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((ip.value >> shift) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((ip.value >> BigInt(112 - 16 * i)) & 0xffffn));
  let run = { start: -1, length: 1 };
  for (let start = 0, end = 0; start < 8; start = end + 1) {
    for (end = start; end < 8 && groups[end] === 0; ) end += 1;
    if (end - start > run.length) run = { start, length: end - start };
  }
  const hex = groups.map((group) => group.toString(16));
  if (run.start < 0) return hex.join(':');
  return `${hex.slice(0, run.start).join(':')}::${hex.slice(run.start + run.length).join(':')}`;
}
