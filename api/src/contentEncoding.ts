// Content-Encoding of request bodies (RFC 9110 §8.4): gzip, deflate (the zlib format, RFC 1950)
// and br, decoded while the body streams in. An unsupported coding is 415 with Accept-Encoding
// naming what is supported (RFC 9110 §15.5.16).
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Transform } from 'node:stream';
import { UnsupportedEncoding } from './errors.ts';

export const SUPPORTED_ENCODINGS = ['gzip', 'deflate', 'br'] as const;
export type Encoding = (typeof SUPPORTED_ENCODINGS)[number];

/**
 * The coding of a body, or undefined for none (`identity` or no header). One coding at most:
 * stacked codings (`gzip, gzip`) are refused rather than decoded layer by layer, since no client
 * of an ingestion API needs them and each layer multiplies the work a small body can cost.
 */
export function contentEncoding(header: string | undefined): Encoding | undefined {
  if (header === undefined) return undefined;
  const codings = header
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
  if (codings.length === 0) return undefined;
  const [coding] = codings;
  if (codings.length > 1 || !(SUPPORTED_ENCODINGS as readonly string[]).includes(coding!)) throw new UnsupportedEncoding(SUPPORTED_ENCODINGS);
  return coding as Encoding;
}

export function decoderFor(encoding: Encoding): Transform {
  if (encoding === 'gzip') return createGunzip();
  if (encoding === 'deflate') return createInflate();
  return createBrotliDecompress();
}
