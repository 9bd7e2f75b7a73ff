// Reading a JSON request body: media type first, then the bytes with the size limit enforced
// while they stream in (never buffering past it), then UTF-8 and JSON decoding.
import type { IncomingMessage } from 'node:http';
import { decodeJson } from '@event-tracker/common/json.ts';
import { BodyTimeout, BodyTooLarge, InvalidEvent, UnsupportedMediaType } from './errors.ts';

/** `application/json`, optionally with `charset=utf-8` (RFC 8259 JSON is UTF-8). */
export function requireJson(contentType: string | undefined): void {
  const [mediaType = '', ...parameters] = (contentType ?? '').split(';').map((part) => part.trim().toLowerCase());
  const charsetOk = parameters.every((parameter) => !parameter.startsWith('charset=') || /^charset="?utf-8"?$/.test(parameter));
  if (mediaType !== 'application/json' || !charsetOk) throw new UnsupportedMediaType();
}

/** Thrown when the client goes away mid-body; nobody is left to answer. */
export class RequestAborted extends Error {
  constructor() {
    super('client closed the connection before the body was complete');
    this.name = 'RequestAborted';
  }
}

/**
 * Reads the body, at most `maxBytes`, within `timeoutMs`. The deadline is ours rather than the
 * server's `requestTimeout`: measured on Node 20, Node 26 and Bun, a request whose headers are in
 * but whose body never finishes was not always cut by it. Past the deadline reading stops and the
 * 408 goes out with Connection: close.
 */
export function readBody(req: IncomingMessage, maxBytes: number, timeoutMs: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > maxBytes) return Promise.reject(new BodyTooLarge(maxBytes));
  // Its 'close' has already fired, so no listener below would ever hear from it.
  if (req.destroyed) return Promise.reject(new RequestAborted());

  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const deadline = setTimeout(() => {
      req.pause();
      stop(new BodyTimeout(timeoutMs));
    }, timeoutMs);
    const stop = (error?: Error) => {
      clearTimeout(deadline);
      req.off('data', onData).off('end', onEnd).off('error', onAbort).off('close', onAbort);
      if (error === undefined) resolve(Buffer.concat(chunks, size));
      else reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
      else {
        // Stop reading: the 413 goes out with Connection: close and the rest is never read.
        req.pause();
        stop(new BodyTooLarge(maxBytes));
      }
    };
    const onEnd = () => stop();
    const onAbort = () => stop(new RequestAborted());
    req.on('data', onData).on('end', onEnd).on('error', onAbort).on('close', onAbort);
  });
}

export function parseJson(body: Buffer): unknown {
  const decoded = decodeJson(body);
  if (decoded.ok) return decoded.value;
  throw new InvalidEvent(body.length === 0 ? `${decoded.reason}; send the event as a JSON object.` : `${decoded.reason}.`);
}
