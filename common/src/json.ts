// Decoding a JSON body, the same way for a request and for a queued message: strict UTF-8 (a
// malformed byte is an error, never a silent U+FFFD), then JSON.parse.

export type Decoded = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string };

/** A parser's message can quote the input; this much of it is enough to find the mistake. */
const MAX_REASON_LENGTH = 200;

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeJson(bytes: Uint8Array): Decoded {
  if (bytes.length === 0) return { ok: false, reason: 'The body is empty' };
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
