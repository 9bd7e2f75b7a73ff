// The shape of a route's handler, and the writer of a complete response with a body. Every answer
// of the API goes through here, with the headers the steps before the handler decided (rate limit,
// CORS, Connection) in the same writeHead.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A route's handler; `source` is the name of the request's write key, while WRITE_KEYS is set. */
export type Handler = (req: IncomingMessage, res: ServerResponse, source?: string) => Promise<void>;

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * Headers decided before the answer is. Kept beside `res` rather than set on it: one writeHead with
 * every header skips the runtime's per-header bookkeeping of setHeader (BENCHMARKS.md section 0).
 */
const EARLY_HEADERS = Symbol('early headers');
type Response = ServerResponse & { [EARLY_HEADERS]?: Record<string, string> };

/** Adds headers to whatever answer `res` gets; `headers` is kept, and may be added to, from here on. */
export function addHeaders(res: ServerResponse, headers: Record<string, string>): void {
  const early = (res as Response)[EARLY_HEADERS];
  if (early === undefined) (res as Response)[EARLY_HEADERS] = headers;
  else Object.assign(early, headers);
}

/** The status line and headers: `headers`, after those added earlier (addHeaders), which are added to. */
export function writeHead(res: ServerResponse, status: number, headers: Readonly<Record<string, string>>): void {
  const early = (res as Response)[EARLY_HEADERS];
  res.writeHead(status, early === undefined ? headers : Object.assign(early, headers));
}

/** `body` as bytes when the same answer is sent again and again (built once, sent as is). */
export function send(res: ServerResponse, status: number, contentType: string, body: string | Buffer, headers: Readonly<Record<string, string>> = {}): void {
  writeHead(res, status, {
    ...headers,
    'Content-Type': contentType,
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  send(res, status, JSON_CONTENT_TYPE, JSON.stringify(body), headers);
}
