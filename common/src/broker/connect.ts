// What every broker client here does the same way with amqplib: bound a connect attempt, try a
// node list in turn, and close a connection or channel without waiting forever for the broker.
import type { EventEmitter } from 'node:events';
import amqp, { type ChannelModel } from 'amqplib';
import { withHeartbeat, type BrokerNode } from './nodes.ts';

/** Bounds the TCP connect and AMQP handshake of one attempt; a black-holed node must not stall recovery. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** How long a close may wait for the broker's close-ok before the socket is given up on. */
const CLOSE_TIMEOUT_MS = 2_000;

export interface ConnectOptions {
  readonly heartbeatSeconds: number;
  /** Shown in the management UI's connection list. */
  readonly connectionName: string;
}

export function connectNode(node: BrokerNode, options: ConnectOptions): Promise<ChannelModel> {
  return amqp.connect(withHeartbeat(node.url, options.heartbeatSeconds), {
    timeout: CONNECT_TIMEOUT_MS,
    clientProperties: { connection_name: options.connectionName },
  });
}

/** The first node of `nodes` that takes a connection, each tried once; throws the last failure. */
export async function connectAny(nodes: readonly BrokerNode[], options: ConnectOptions): Promise<{ connection: ChannelModel; node: BrokerNode }> {
  let failure: unknown;
  for (const node of nodes) {
    try {
      return { connection: await connectNode(node, options), node };
    } catch (err) {
      failure = err;
    }
  }
  throw failure;
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
