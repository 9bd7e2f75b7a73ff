// Writes a complete response with a body. Every answer of the API goes through here.
import type { ServerResponse } from 'node:http';

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** `body` as bytes when the same answer is sent again and again (built once, sent as is). */
export function send(res: ServerResponse, status: number, contentType: string, body: string | Buffer, headers: Readonly<Record<string, string>> = {}): void {
  res.writeHead(status, {
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
