// Decoding a JSON body, the same way for a request and for a queued message: a bound on nesting,
// strict UTF-8 (a malformed byte is an error, never a silent U+FFFD), then JSON.parse.
import { MAX_PAYLOAD_DEPTH } from './eventContract.ts';

export type Decoded = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string };

/** A parser's message can quote the input; this much of it is enough to find the mistake. */
const MAX_REASON_LENGTH = 200;

/**
 * Twice the payload's limit: every body the contract accepts is within it (an envelope adds at most
 * three levels, `{"batch": [{"payload": ...`), and one just past the payload's limit still gets the
 * answer naming its path. Deeper nesting costs JSON.parse several times what flat JSON of the same
 * size does, and JSON.stringify runs out of stack on it: such a body is refused before either.
 */
export const MAX_JSON_DEPTH = 2 * MAX_PAYLOAD_DEPTH;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Inside = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function decodeJson(bytes: Uint8Array): Decoded {
  if (bytes.length === 0) return { ok: false, reason: 'The body is empty' };
  if (nestedDeeperThan(bytes, MAX_JSON_DEPTH)) return { ok: false, reason: `The body is nested deeper than ${MAX_JSON_DEPTH} levels` };
  return parseText(bytes, utf8);
}

/**
 * A part of a body splitBatch found (the envelope, an element), parsed as decodeJson parses a whole
 * body. A byte-order mark is only skipped at the start of a body: inside one, JSON.parse refuses it.
 */
export function parsePart(bytes: Uint8Array, atStart = false): Decoded {
  return parseText(bytes, atStart ? utf8 : utf8Inside);
}

function parseText(bytes: Uint8Array, decoder: typeof utf8): Decoded {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return { ok: false, reason: 'The body is not valid UTF-8' };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    const message = Array.from(String((error as Error).message)).slice(0, MAX_REASON_LENGTH).join('');
    return { ok: false, reason: `The body is not valid JSON: ${message}` };
  }
}

/**
 * A batch body's events, found without parsing: each one's byte range, and the body without them.
 * Or why not: the body is not an object holding a `"batch"` array, or nests too deep to say.
 */
export type BatchSplit =
  | {
      readonly ok: true;
      /** The body with the batch array emptied (`{"batch":[]}` and whatever else the object holds). */
      readonly envelope: Uint8Array;
      /** Each element's range in the body, `[start, end)`, whitespace around it included. */
      readonly events: ReadonlyArray<readonly [start: number, end: number]>;
    }
  | { readonly ok: false; readonly tooDeep: boolean };

/**
 * Where the elements of a top-level object's `"batch"` array are, in one pass over the bytes: the
 * last such array, as JSON.parse keeps the last of a repeated key. Parsing the envelope and each
 * element then gives what JSON.parse of the whole body gives, and fails exactly when it fails.
 */
export function splitBatch(bytes: Uint8Array): BatchSplit {
  let depth = 0;
  let inString = false;
  let keyStart = -1; // where the key being read at depth 1 opened its quote
  let expectKey = false;
  let batchKey = false; // the last key read at depth 1 is "batch"
  let open = -1;
  let start = -1;
  let elements: Array<readonly [number, number]> = [];
  let found: { open: number; close: number; elements: Array<readonly [number, number]> } | undefined;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) {
        inString = false;
        if (keyStart >= 0) batchKey = isBatchKey(bytes, keyStart, i + 1);
        // A later "batch" replaces an earlier one's array, whatever it holds itself.
        if (batchKey) found = undefined;
        keyStart = -1;
      }
    } else if (byte === QUOTE) {
      inString = true;
      if (depth === 1 && expectKey) [keyStart, expectKey] = [i, false];
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > MAX_JSON_DEPTH) return { ok: false, tooDeep: true };
      if (depth === 1 && byte !== OPEN_BRACE) return { ok: false, tooDeep: nestedDeeperThan(bytes, MAX_JSON_DEPTH) };
      if (depth === 1) expectKey = true;
      else if (depth === 2 && byte === OPEN_BRACKET && batchKey) [open, start, elements] = [i, i + 1, []];
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      if (--depth === 1 && open >= 0) {
        if (elements.length > 0 || !isBlank(bytes, start, i)) elements.push([start, i]);
        found = { open, close: i, elements };
        open = -1;
      }
    } else if (byte === COMMA) {
      if (depth === 1) [expectKey, batchKey] = [true, false];
      else if (depth === 2 && open >= 0) [elements[elements.length], start] = [[start, i], i + 1];
    }
  }
  if (found === undefined) return { ok: false, tooDeep: false };
  const envelope = new Uint8Array(bytes.length - (found.close - found.open - 1));
  envelope.set(bytes.subarray(0, found.open + 1));
  envelope.set(bytes.subarray(found.close), found.open + 1);
  return { ok: true, envelope, events: found.elements };
}

const BATCH_KEY = new TextEncoder().encode('"batch"');

/** Whether the JSON string at `[start, end)` is "batch", escapes (`"b\u0061tch"`) included. */
function isBatchKey(bytes: Uint8Array, start: number, end: number): boolean {
  const key = bytes.subarray(start, end);
  if (key.length === BATCH_KEY.length && key.every((byte, i) => byte === BATCH_KEY[i])) return true;
  if (!key.includes(BACKSLASH)) return false;
  const decoded = parsePart(key);
  return decoded.ok && decoded.value === 'batch';
}

function isBlank(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (!WHITESPACE.has(bytes[i]!)) return false;
  return true;
}

/**
 * Whether objects and arrays open more than `levels` deep, counted on the bytes: brackets inside
 * strings do not count, and malformed JSON is left for JSON.parse to name.
 */
function nestedDeeperThan(bytes: Uint8Array, levels: number): boolean {
  // Depth cannot pass the number of '{' and '[' bytes, which indexOf counts natively: most bodies
  // hold a handful, and skip the byte-by-byte walk below, which costs about as much as JSON.parse.
  if (openersAtMost(bytes, levels)) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) inString = true;
    else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > levels) return true;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) depth--;
  }
  return false;
}

/** Whether `bytes` holds at most `limit` '{' and '[' bytes, inside strings or not. */
function openersAtMost(bytes: Uint8Array, limit: number): boolean {
  let count = 0;
  for (let i = bytes.indexOf(OPEN_BRACE); i !== -1; i = bytes.indexOf(OPEN_BRACE, i + 1)) if (++count > limit) return false;
  for (let i = bytes.indexOf(OPEN_BRACKET); i !== -1; i = bytes.indexOf(OPEN_BRACKET, i + 1)) if (++count > limit) return false;
  return true;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
/** JSON's four: space, tab, line feed, carriage return. */
const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);
