// Graceful shutdown: stop accepting, let in-flight requests finish (their broker confirms
// included) up to a deadline, then close the broker connection.
import type { Server } from 'node:http';
import type { Logger } from '@event-tracker/common/logger.ts';

/** How often keep-alive sockets are checked for having fallen idle while draining. */
const IDLE_SWEEP_MS = 100;

export async function shutDown(server: Server, broker: { close(): Promise<void> }, timeoutMs: number, logger: Logger): Promise<void> {
  // Past the deadline, cut whatever is still open: those clients got no 202 and will retry.
  const deadline = setTimeout(() => {
    logger.warn('shutdown timeout reached; closing open connections', { timeoutMs });
    server.closeAllConnections();
  }, timeoutMs);
  // A keep-alive socket stays open after its last answer; close each one as soon as it is idle.
  const idleSweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
  clearTimeout(deadline);
  clearInterval(idleSweep);
  await broker.close();
}
