// The rate limit step of a request: counts it against its client's limit, whichever store decides
// (rateLimit/), and answers 429 when over.
import type { ServerResponse } from 'node:http';
import { RateLimited } from '../errors.ts';
import { addHeaders } from '../http.ts';
import { rateLimitHeaders, retryAfterSeconds } from '../rateLimit/headers.ts';
import type { Decision, RateLimiter } from '../rateLimit/types.ts';

/**
 * The middleware step: counts the request, adds the headers to its answer, throws RateLimited when
 * over. Returns a promise only when the store answers asynchronously (Redis).
 */
export function enforceRateLimit(limiter: RateLimiter, key: string, res: ServerResponse): Promise<void> | undefined {
  const decision = limiter.hit(key);
  if (decision instanceof Promise) return decision.then((decided) => admit(decided, res));
  admit(decision, res);
  return undefined;
}

function admit(decision: Decision, res: ServerResponse): void {
  addHeaders(res, rateLimitHeaders(decision));
  if (!decision.allowed) throw new RateLimited(retryAfterSeconds(decision));
}
