// The publisher's broker session (common/src/broker/session.ts): every new session's confirm
// channel is handed to the publisher, and the connection's blocked/unblocked (a broker resource
// alarm) reaches it too. A session counts as working at its first confirm.
import type { BackoffOptions } from '@event-tracker/common/backoff.ts';
import type { BrokerNode } from '@event-tracker/common/broker/nodes.ts';
import { BrokerSession } from '@event-tracker/common/broker/session.ts';
import { declareTopology, type TopologyOptions } from '@event-tracker/common/broker/topology.ts';
import type { Logger } from '@event-tracker/common/logger.ts';
import type { ConfirmPublisher } from './publisher.ts';

export interface BrokerOptions {
  readonly nodes: readonly BrokerNode[];
  readonly heartbeatSeconds: number;
  readonly topology: TopologyOptions;
  readonly publisher: ConfirmPublisher;
  readonly logger: Logger;
  /** Reconnect back-off; the default suits a broker restart (first retry within half a second). */
  readonly retry?: BackoffOptions;
}

export interface BrokerConnection {
  /** Closes the channel, then the connection, and stops reconnecting. */
  close(): Promise<void>;
}

const RETRY: BackoffOptions = { baseMs: 500, maxMs: 30_000 };

/** Least time between two channel resets on a nack, so a broker refusing everything is not hammered. */
const NACK_RESET_MS = 5_000;

/** Starts connecting in the background: until a session is open the publisher answers 503 at once. */
export function connectBroker(options: BrokerOptions): BrokerConnection {
  const { publisher, logger, topology } = options;
  let lastReset = -Infinity;
  const session: BrokerSession = new BrokerSession({
    ...options,
    retry: options.retry ?? RETRY,
    connectionName: 'event-tracker-api',
    handlers: {
      opened: (channel, connection) => {
        connection.on('blocked', (reason: unknown) => {
          publisher.setBlocked(true);
          logger.warn('broker blocked publishing', { reason });
        });
        connection.on('unblocked', () => {
          publisher.setBlocked(false);
          logger.info('broker unblocked publishing');
        });
        // A return means no queue is bound for the event (an operator deleted the stored queue,
        // say). Declaring the topology again lets the next events through, instead of answering
        // 503 until some later reconnect.
        let redeclaring = false;
        channel.on('return', () => {
          if (redeclaring) return;
          redeclaring = true;
          logger.warn('event returned as unroutable; declaring the topology again', { exchange: topology.exchange });
          declareTopology(connection, topology, logger)
            .catch((err: unknown) => logger.warn('declaring the topology failed', { err }))
            .finally(() => (redeclaring = false));
        });
        // RabbitMQ 3.10 can nack every publish of a confirm channel opened on a surviving node just
        // as a quorum queue's leader died, long after a new leader is elected, while a new channel
        // is acked at once (tests/cluster/failover.test.ts found it, on Bun mostly). So a nack ends
        // the session, at most once per NACK_RESET_MS: the next session's channel is a new one.
        const onNack = () => {
          const now = performance.now();
          if (now - lastReset < NACK_RESET_MS) return;
          lastReset = now;
          logger.warn('the broker refused a publish; opening a new channel');
          void channel.close().catch(() => {});
        };
        publisher.attach(channel, () => session.worked(), onNack);
      },
      // The publisher detaches itself on the channel's 'close'; nothing else holds the session.
      lost: () => {},
    },
  });
  session.start();
  return { close: () => session.close() };
}
