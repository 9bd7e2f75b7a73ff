// What a decision tells the client: the rate limit headers on every limited answer, and
// Retry-After on a 429.
import type { Decision } from './types.ts';

/** IETF httpapi-ratelimit-headers fields, in whole seconds. */
export function rateLimitHeaders(decision: Decision): Record<string, string> {
  return {
    'RateLimit-Limit': String(decision.limit),
    'RateLimit-Remaining': String(decision.remaining),
    'RateLimit-Reset': String(Math.ceil(decision.resetMs / 1000)),
    'RateLimit-Policy': `${decision.limit};w=${Math.ceil(decision.windowMs / 1000)}`,
  };
}

/** Whole seconds, rounded up, so a retry after exactly that long finds the oldest request gone. */
export function retryAfterSeconds(decision: Decision): number {
  return Math.max(1, Math.ceil(decision.resetMs / 1000));
}
