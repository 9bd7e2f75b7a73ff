// What becomes of one delivery, as data: the parser and the store each give one. The batch writer
// keeps a `retry` in hand and writes it again; every other verdict goes to the settler (settler.ts),
// the one place that acks or dead-letters.

/** Why a message was dead-lettered; the label of the dead-letter metric. */
export type RejectionCause = 'unparseable' | 'contract' | 'unencodable' | 'refused';

export interface Rejection {
  readonly verdict: 'rejected';
  readonly cause: RejectionCause;
  /** For the `x-rejection-reason` header and the log; never the payload, always short. */
  readonly reason: string;
}

/**
 * `stored` and `duplicate` are acked; `rejected` goes to the dead-letter queue, then is acked;
 * `retry` stays in hand: the write failed as a whole (the database is unreachable, slow, or the
 * write concern failed), so the document's fate is unknown and it is written again.
 */
export type Verdict = { readonly verdict: 'stored' } | { readonly verdict: 'duplicate' } | Rejection | { readonly verdict: 'retry' };

/** Longest reason kept: enough to say what is wrong, small enough for a header and a log line. */
export const MAX_REASON_LENGTH = 500;

export function rejection(cause: RejectionCause, reason: string): Rejection {
  const bounded = reason.length <= MAX_REASON_LENGTH ? reason : `${Array.from(reason.slice(0, MAX_REASON_LENGTH)).slice(0, -1).join('')}…`;
  return { verdict: 'rejected', cause, reason: bounded };
}

export const STORED = { verdict: 'stored' } as const satisfies Verdict;
export const DUPLICATE = { verdict: 'duplicate' } as const satisfies Verdict;
export const RETRY = { verdict: 'retry' } as const satisfies Verdict;
