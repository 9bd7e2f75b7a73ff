// Reading a JSON request body: media type first, then the bytes, decompressed if the client says
// so, with the size limit enforced on the bytes received and on the decompressed bytes while they
// stream in (never buffering past it), then UTF-8 and JSON decoding.
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { setImmediate as loopTurn } from 'node:timers/promises';
import { decodeJson, parsePart, splitBatch } from '@event-tracker/common/json.ts';
import { contentEncoding, decoderFor } from './contentEncoding.ts';
import { Deadlines } from './deadlines.ts';
import { BodyTimeout, BodyTooLarge, InvalidEvent, UnsupportedMediaType, eventTooLarge } from './errors.ts';

/**
 * `application/json`, or `text/plain` (what `navigator.sendBeacon` sends a string as, and the one
 * type a browser posts cross-origin without a preflight), each optionally with `charset=utf-8`
 * (RFC 8259 JSON is UTF-8).
 */
export function requireJson(contentType: string | undefined): void {
  if (contentType === 'application/json') return; // what nearly every client sends
  const [mediaType = '', ...parameters] = (contentType ?? '').split(';').map((part) => part.trim().toLowerCase());
  const charsetOk = parameters.every((parameter) => !parameter.startsWith('charset=') || /^charset="?utf-8"?$/.test(parameter));
  if ((mediaType !== 'application/json' && mediaType !== 'text/plain') || !charsetOk) throw new UnsupportedMediaType();
}

/** Thrown when the client goes away mid-body; nobody is left to answer. */
export class RequestAborted extends Error {
  constructor() {
    super('client closed the connection before the body was complete');
    this.name = 'RequestAborted';
  }
}

/** Body deadlines by length, sharing one timer each: every route reads within REQUEST_TIMEOUT_MS. */
const bodyDeadlines = new Map<number, Deadlines>();

function deadlinesOf(timeoutMs: number): Deadlines {
  let deadlines = bodyDeadlines.get(timeoutMs);
  if (deadlines === undefined) bodyDeadlines.set(timeoutMs, (deadlines = new Deadlines(timeoutMs)));
  return deadlines;
}

/**
 * Reads the body, at most `maxBytes` as received and once decompressed, within `timeoutMs`. The
 * deadline is ours rather than the server's `requestTimeout`: measured on Node 20, Node 26 and Bun, a request whose
 * headers are in but whose body never finishes was not always cut by it. Past the deadline or the
 * limit reading stops, the decoder is destroyed (so a gzip bomb costs at most `maxBytes` of memory
 * and the time to inflate that much) and the answer goes out with Connection: close.
 */
export function readBody(req: IncomingMessage, maxBytes: number, timeoutMs: number): Promise<Buffer> {
  const encoding = contentEncoding(req.headers['content-encoding']);
  const declared = Number(req.headers['content-length']);
  // Compressed or not, a body sent with more bytes than the limit cannot decode to fewer.
  if (declared > maxBytes) return Promise.reject(new BodyTooLarge(maxBytes));
  // Its 'close' has already fired, so no listener below would ever hear from it.
  if (req.destroyed) return Promise.reject(new RequestAborted());

  const decoder = encoding === undefined ? undefined : decoderFor(encoding);
  const source: Readable = decoder === undefined ? req : req.pipe(decoder);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    let done = false;
    // What arrives is counted too, Content-Length or not: compressed data that inflates to nothing
    // (empty deflate blocks, chunked) would otherwise be read until the deadline. The same limit as
    // Content-Length's above, so a body is refused alike whether it declares its length or not.
    let received = 0;
    const deadlines = deadlinesOf(timeoutMs);
    const deadline = deadlines.start(() => stop(new BodyTimeout(timeoutMs)));
    const stop = (error?: Error) => {
      if (done) return;
      done = true;
      deadlines.cancel(deadline);
      // A body read to its end leaves the listeners be: its request and decoder emit nothing more
      // but 'close', which `ended` answers. Reading cut short must stop hearing from them.
      if (error === undefined) return resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
      source.off('data', onData).off('end', onEnd).off('error', onCorrupt);
      req.off('data', onWire).off('end', onEnded).off('error', onAbort).off('close', onClose);
      req.pause();
      if (decoder !== undefined) {
        req.unpipe(decoder);
        decoder.destroy();
      }
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
      else stop(new BodyTooLarge(maxBytes));
    };
    const onEnd = () => {
      ended = true; // the request's, when the body is not encoded (the decoder ends after it otherwise)
      stop();
    };
    // The decoder's error: the bytes are not what Content-Encoding says (corrupt, or cut short).
    const onCorrupt = () => stop(new InvalidEvent(`The body is not valid ${encoding} data.`));
    const onWire = (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxBytes) stop(new BodyTooLarge(maxBytes));
    };
    const onEnded = () => (ended = true);
    const onAbort = () => stop(new RequestAborted());
    // A request emits 'close' once it is done; only before its 'end' does that mean the client left.
    const onClose = () => {
      if (!ended) onAbort();
    };
    source.on('data', onData).on('end', onEnd);
    if (decoder !== undefined) {
      decoder.on('error', onCorrupt);
      req.on('data', onWire).on('end', onEnded);
    }
    req.on('error', onAbort).on('close', onClose);
  });
}

export function parseJson(body: Buffer): unknown {
  const decoded = decodeJson(body);
  if (decoded.ok) return decoded.value;
  throw new InvalidEvent(body.length === 0 ? `${decoded.reason}; send the event as a JSON object.` : `${decoded.reason}.`);
}

/** How a batch route reads its body `{"batch": [...]}`. */
export interface BatchBodyLimits {
  /** One element of the array, in bytes as received (decompressed). */
  readonly maxEventBytes: number;
  /** The rest of the body; and a body that holds no batch array, which is refused unparsed past it. */
  readonly maxEnvelopeBytes: number;
  /** The answer to such a body: what the route takes. */
  readonly notABatch: string;
}

/** Bytes of events parsed between two turns of the event loop (BENCHMARKS.md, "Worst-case requests"). */
const SLICE_BYTES = 64 * 1024;

/**
 * A batch body, parsed as parseJson parses it but an event at a time, the event loop turning after
 * each 64 KiB: JSON.parse of a MiB body made of small nodes holds the loop past the 50 ms target
 * (BENCHMARKS.md, "Worst-case requests"), while other requests and the broker's heartbeats wait
 * for one slice of it at most. No part is parsed before every event is
 * known to be within its limit, so no single parse is larger than the limits.
 */
export async function parseBatch(body: Buffer, limits: BatchBodyLimits): Promise<unknown> {
  const split = splitBatch(body);
  if (!split.ok) {
    // decodeJson names the depth without parsing; anything else is refused by the route anyway.
    if (split.tooDeep || body.length <= limits.maxEnvelopeBytes) return parseJson(body);
    throw new InvalidEvent(limits.notABatch);
  }
  if (split.envelope.length > limits.maxEnvelopeBytes) throw new InvalidEvent(limits.notABatch);
  const index = split.events.findIndex(([start, end]) => end - start > limits.maxEventBytes);
  if (index >= 0) throw eventTooLarge(`batch[${index}]`, limits.maxEventBytes);
  const envelope = decoded(parsePart(split.envelope, true)) as { batch: unknown[] };
  let parsed = 0;
  for (const [start, end] of split.events) {
    envelope.batch.push(decoded(parsePart(body.subarray(start, end)), envelope.batch.length));
    parsed += end - start;
    if (parsed >= SLICE_BYTES) {
      parsed = 0;
      await loopTurn();
    }
  }
  return envelope;
}

function decoded(result: ReturnType<typeof decodeJson>, event?: number): unknown {
  if (result.ok) return result.value;
  throw new InvalidEvent(event === undefined ? `${result.reason}.` : `${result.reason} (in batch[${event}]).`);
}
