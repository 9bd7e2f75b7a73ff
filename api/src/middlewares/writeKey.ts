// Write keys (WRITE_KEYS): who may post events, and the name their events are stored under
// (`source`). Checked after the rate limit, so failed attempts count, and before the body is read.
// Only SHA-256 digests are kept, so neither the config object, a log line nor a heap dump holds a key.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Unauthorized } from '../errors.ts';

export interface WriteKey {
  /** Stored with each event as `source`; safe to log. */
  readonly name: string;
  readonly digest: Buffer;
}

export type WriteKeys = readonly WriteKey[];

// No ':': the consumer stores an id another source already holds as `<source>:<id>`, which must
// never equal a plain id or another source's (ARCHITECTURE.md, "Ids per source").
const NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * WRITE_KEYS: `name=key` pairs, comma-separated, spaces around each part ignored; a key may hold `=`.
 * The keys, or every problem, each naming an entry by its position: the text may hold keys, so
 * no message quotes any of it.
 */
export function parseWriteKeys(text: string): { readonly keys: WriteKeys } | { readonly problems: readonly string[] } {
  const problems: string[] = [];
  const keys: WriteKey[] = [];
  const seenNames = new Map<string, number>();
  const seenDigests = new Map<string, number>();
  text.split(',').forEach((entry, index) => {
    const position = index + 1;
    const split = entry.indexOf('=');
    const name = (split < 0 ? entry : entry.slice(0, split)).trim();
    const key = split < 0 ? '' : entry.slice(split + 1).trim();
    if (!NAME.test(name) || key === '') {
      problems.push(`WRITE_KEYS entry ${position} must be name=key, the name of letters, digits, "_", "." or "-" and the key not empty`);
      return;
    }
    const digest = digestOf(key);
    const sameName = seenNames.get(name);
    const sameKey = seenDigests.get(digest.toString('hex'));
    if (sameName !== undefined) problems.push(`WRITE_KEYS entries ${sameName} and ${position} have the same name: names must be unique`);
    if (sameKey !== undefined) problems.push(`WRITE_KEYS entries ${sameKey} and ${position} have the same key: keys must be unique`);
    seenNames.set(name, position);
    seenDigests.set(digest.toString('hex'), position);
    keys.push({ name, digest });
  });
  return problems.length > 0 ? { problems } : { keys: Object.freeze(keys) };
}

/**
 * The key a request presents, first found of: `Authorization: Basic` (the key as user name, as the
 * Segment and RudderStack clients send it), `Authorization: Bearer`, `X-Write-Key`, and the
 * `writeKey` query parameter (navigator.sendBeacon cannot set headers). '' for an Authorization
 * header of another scheme; undefined when there is none at all.
 */
export function presentedKey(req: Pick<IncomingMessage, 'headers' | 'url'>): string | undefined {
  const { authorization } = req.headers;
  if (authorization !== undefined) return fromAuthorization(authorization);
  const header = req.headers['x-write-key'];
  if (typeof header === 'string') return header.trim();
  const query = req.url?.indexOf('?') ?? -1;
  return query < 0 ? undefined : (new URLSearchParams(req.url!.slice(query + 1)).get('writeKey') ?? undefined);
}

/**
 * The name of the key the request presents, or Unauthorized. Every configured digest is compared,
 * in constant time, whichever matches: the time taken says nothing about which key, or how much of
 * one, was right.
 */
export function authenticate(keys: WriteKeys, req: Pick<IncomingMessage, 'headers' | 'url'>): string {
  const key = presentedKey(req);
  if (key === undefined) throw new Unauthorized(false);
  const digest = digestOf(key);
  let match: string | undefined;
  for (const entry of keys) if (timingSafeEqual(entry.digest, digest)) match = entry.name;
  if (match === undefined) throw new Unauthorized(true);
  return match;
}

function fromAuthorization(value: string): string {
  const [scheme = '', credentials = ''] = value.trim().split(/\s+/, 2);
  if (/^bearer$/i.test(scheme)) return credentials;
  if (!/^basic$/i.test(scheme)) return '';
  // RFC 7617: base64 of "user-id:password"; the key is the user id, the password empty.
  const decoded = Buffer.from(credentials, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? decoded : decoded.slice(0, colon);
}

/** Equal-length digests of any two keys, as timingSafeEqual needs. */
function digestOf(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}
