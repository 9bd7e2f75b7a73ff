// What both services do the same way with amqplib: put the heartbeat in the URL, bound a connect
// attempt, and close a connection or channel without waiting forever for the broker's answer.
import type { EventEmitter } from 'node:events';

/** Bounds the TCP connect and AMQP handshake of one attempt; a black-holed broker must not stall recovery. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** How long a close may wait for the broker's close-ok before the socket is given up on. */
export const CLOSE_TIMEOUT_MS = 2_000;

/** amqplib takes the heartbeat only from the URL's query when given a URL string. */
export function withHeartbeat(url: string, seconds: number): string {
  const parsed = new URL(url);
  parsed.searchParams.set('heartbeat', String(seconds));
  return parsed.toString();
}

export type CloseOutcome = 'closed' | 'failed' | 'timed-out';

/**
 * Closes an amqplib connection or channel. amqplib's close() settles on the broker's close-ok, and
 * never if the socket dies first; the 'close' event comes either way. Resolves at whichever comes
 * first, or after `timeoutMs`, so no shutdown hangs on a broker that stopped answering.
 */
export function closeWithin(target: EventEmitter, close: () => Promise<void>, timeoutMs = CLOSE_TIMEOUT_MS): Promise<CloseOutcome> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done('timed-out'), timeoutMs);
    const onClose = () => done('closed');
    const done = (outcome: CloseOutcome) => {
      clearTimeout(timer);
      target.off('close', onClose);
      resolve(outcome);
    };
    target.once('close', onClose);
    close().then(
      () => done('closed'),
      () => done('failed'),
    );
  });
}
