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

export function decodeJson(bytes: Uint8Array): Decoded {
  if (bytes.length === 0) return { ok: false, reason: 'The body is empty' };
  if (nestedDeeperThan(bytes, MAX_JSON_DEPTH)) return { ok: false, reason: `The body is nested deeper than ${MAX_JSON_DEPTH} levels` };
  let text: string;
  try {
    text = utf8.decode(bytes);
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
 * Whether objects and arrays open more than `levels` deep, counted on the bytes: brackets inside
 * strings do not count, and malformed JSON is left for JSON.parse to name.
 */
function nestedDeeperThan(bytes: Uint8Array, levels: number): boolean {
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

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
