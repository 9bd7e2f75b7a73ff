// CORS on the ingestion routes (Fetch standard, "CORS protocol"), so a page on another origin can
// post events with fetch or navigator.sendBeacon and read the answer's rate-limit headers.
import type { ServerResponse } from 'node:http';
import { OriginNotAllowed } from '../errors.ts';
import { addHeaders, writeHead } from '../http.ts';

/** `*` (the default), or the exact origins allowed, e.g. `https://shop.example`. */
export type CorsPolicy = { readonly anyOrigin: true } | { readonly anyOrigin: false; readonly origins: ReadonlySet<string> };

/** Headers a script may read from an answer beyond the CORS-safelisted ones. */
const EXPOSED = 'Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy';
/**
 * Request headers a page may send: Content-Type for application/json, which is not safelisted, and
 * the two ways of giving a write key in a header.
 */
const ALLOWED_HEADERS = 'Content-Type, Content-Encoding, Authorization, X-Write-Key';
/** How long a browser may cache a preflight: Chromium caps it at 2 hours anyway. */
const MAX_AGE_SECONDS = 7_200;

/**
 * Sets the CORS headers of any answer on an ingestion route to a request with an Origin. A request
 * whose Origin the policy refuses is answered 403 before anything else happens; one without Origin
 * (curl, a server) is not a CORS request and gets no CORS headers, only `Vary: Origin` when the
 * answer depends on it.
 */
export function applyCors(policy: CorsPolicy, origin: string | undefined, res: ServerResponse): void {
  // The answer differs by Origin, so caches must key on it.
  if (!policy.anyOrigin) addHeaders(res, { Vary: 'Origin' });
  if (origin === undefined) return;
  if (!policy.anyOrigin && !policy.origins.has(origin)) throw new OriginNotAllowed();
  addHeaders(res, { 'Access-Control-Allow-Origin': policy.anyOrigin ? '*' : origin, 'Access-Control-Expose-Headers': EXPOSED });
}

/** The answer to a preflight (OPTIONS), after applyCors: 204, never rate limited. */
export function answerPreflight(res: ServerResponse, methods: readonly string[]): void {
  writeHead(res, 204, {
    'Access-Control-Allow-Methods': methods.join(', '),
    'Access-Control-Allow-Headers': ALLOWED_HEADERS,
    'Access-Control-Max-Age': String(MAX_AGE_SECONDS),
    'Cache-Control': 'no-store',
  });
  res.end();
}

/** CORS_ALLOWED_ORIGINS: `*`, or a comma-separated list of origins; the problem with it otherwise. */
export function parseCorsPolicy(text: string): CorsPolicy | string {
  if (text.trim() === '*') return { anyOrigin: true };
  const origins = text.split(',').map((entry) => entry.trim());
  const bad = origins.filter((origin) => !isOrigin(origin));
  if (bad.length > 0) return `CORS_ALLOWED_ORIGINS must be * or a comma-separated list of origins such as https://shop.example (not ${bad.map((o) => `"${o}"`).join(', ')})`;
  return { anyOrigin: false, origins: new Set(origins) };
}

/** An origin as browsers send it: scheme, host and port only, in its serialised form. */
function isOrigin(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === text;
  } catch {
    return false;
  }
}
