// Name-based UUIDs (RFC 9562 §5.5, version 5): the same namespace and name always give the same
// UUID, so an id derived from a client's own message id is the same on every retry.
import { createHash } from 'node:crypto';

/** The version-5 UUID of `name` (UTF-8) in `namespace` (a UUID), lower case. */
export function uuidV5(namespace: string, name: string): string {
  const hash = createHash('sha1').update(Buffer.from(namespace.replaceAll('-', ''), 'hex')).update(name, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50; // version 5
  hash[8] = (hash[8]! & 0x3f) | 0x80; // variant 10xx
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
