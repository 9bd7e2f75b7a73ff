// Who a request counts against. IPv4 clients by address; IPv6 clients by their /64, since one
// subscriber usually holds a whole /64 and could otherwise rotate addresses to escape the limit.
import { isIP } from 'node:net';

/**
 * The client's address: the socket peer, or with `trustProxy` = N > 0 the X-Forwarded-For entry
 * N hops from the right (each trusted proxy appends the address it saw, so entries to the left of
 * that one may be forged by the client). A list shorter than N yields its leftmost entry.
 */
export function clientAddress(remoteAddress: string | undefined, forwardedFor: string | undefined, trustProxy: number): string {
  if (trustProxy === 0 || forwardedFor === undefined) return remoteAddress ?? '';
  const hops = forwardedFor.split(',').map((entry) => entry.trim());
  return hops[Math.max(0, hops.length - trustProxy)] ?? remoteAddress ?? '';
}

/** The rate-limit key for an address; text that is no IP address is used as it is. */
export function clientKey(address: string): string {
  if (isIP(address) !== 6) return address;
  const groups = ipv6Groups(address);
  const isIPv4Mapped = groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
  if (isIPv4Mapped) return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  return `${groups.slice(0, 4).map((group) => group.toString(16)).join(':')}::/64`;
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
