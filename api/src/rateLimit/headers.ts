// What a decision tells the client: the rate limit headers on every limited answer, and
// Retry-After on a 429.
import type { Decision } from './types.ts';

/** The limit and policy fields of one limit and window: the same on every answer, so built once. */
const fixedFields = new Map<number, Map<number, { readonly limit: string; readonly policy: string }>>();

function fixedFieldsOf(limit: number, windowMs: number): { readonly limit: string; readonly policy: string } {
  let byWindow = fixedFields.get(limit);
  if (byWindow === undefined) fixedFields.set(limit, (byWindow = new Map()));
  let fields = byWindow.get(windowMs);
  if (fields === undefined) byWindow.set(windowMs, (fields = { limit: String(limit), policy: `${limit};w=${Math.ceil(windowMs / 1000)}` }));
  return fields;
}

/** IETF httpapi-ratelimit-headers fields, in whole seconds. */
export function rateLimitHeaders(decision: Decision): Record<string, string> {
  const fixed = fixedFieldsOf(decision.limit, decision.windowMs);
  return {
    'RateLimit-Limit': fixed.limit,
    'RateLimit-Remaining': String(decision.remaining),
    'RateLimit-Reset': String(Math.ceil(decision.resetMs / 1000)),
    'RateLimit-Policy': fixed.policy,
  };
}

/** Whole seconds, rounded up, so a retry after exactly that long finds the oldest request gone. */
export function retryAfterSeconds(decision: Decision): number {
  return Math.max(1, Math.ceil(decision.resetMs / 1000));
}
