// The RabbitMQ connection behind the publisher. amqplib 2's built-in recovery reconnects with
// capped exponential back-off and jitter; after every (re)connect, `setup` opens a confirm
// channel, declares the topology and hands the channel to the publisher.
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { CONNECT_TIMEOUT_MS, closeWithin, withHeartbeat } from '@event-tracker/common/amqp.ts';
import type { Logger } from '@event-tracker/common/logger.ts';
import type { ConfirmPublisher } from './publisher.ts';
import type { TopologyOptions } from '@event-tracker/common/topology.ts';
import { assertTopology } from '@event-tracker/common/topology.ts';

export interface BrokerOptions {
  readonly url: string;
  readonly heartbeatSeconds: number;
  readonly topology: TopologyOptions;
  readonly publisher: ConfirmPublisher;
  readonly logger: Logger;
  /** Delay before reconnect attempt `attempt` (from 1); amqplib's back-off when absent. */
  readonly reconnectDelay?: (attempt: number) => number;
}

export interface BrokerConnection {
  /** Resolves at the first successful connection (retrying until then); rejects if closed first. */
  waitForConnect(): Promise<void>;
  /** Closes the channel, then the connection, and stops reconnecting. */
  close(): Promise<void>;
}

export async function connectBroker(options: BrokerOptions): Promise<BrokerConnection> {
  const { publisher, logger, topology } = options;
  let current: { model: ChannelModel; channel: ConfirmChannel } | null = null;
  let closing = false;

  const setup = async (model: ChannelModel): Promise<void> => {
    // Until setup returns, the recovering model does not forward this connection's errors; an
    // error here surfaces as the setup failure, and recovery retries.
    model.on('error', () => {});
    const channel = await model.createConfirmChannel();
    channel.on('error', (err: Error) => logger.warn('broker channel error', { err }));
    channel.on('close', () => {
      // A channel can die alone (a channel-level error) while its connection lives on. Closing the
      // connection then hands the problem to recovery, with its back-off. When the whole connection
      // closed, 'disconnect' has already cleared `current` by the time this runs.
      setImmediate(() => {
        if (current?.channel !== channel || closing) return;
        logger.warn('broker channel closed; reconnecting');
        model.close().catch((err: unknown) => logger.warn('closing the broker connection failed', { err }));
      });
    });
    await assertTopology(channel, topology);
    // A return means the queue is gone (an operator deleted it, say). Declaring it again lets the
    // next events through, instead of answering 503 until some later reconnect.
    let redeclaring = false;
    channel.on('return', () => {
      if (redeclaring) return;
      redeclaring = true;
      logger.warn('event returned as unroutable; declaring the queue again', { queue: topology.queueName });
      assertTopology(channel, topology)
        .catch((err: unknown) => logger.warn('declaring the queue failed', { err }))
        .finally(() => (redeclaring = false));
    });
    current = { model, channel };
    publisher.attach(channel);
  };

  const recovering = await amqp.connect(withHeartbeat(options.url, options.heartbeatSeconds), {
    timeout: CONNECT_TIMEOUT_MS,
    recovery: {
      initialDelay: 250,
      maxDelay: 30_000,
      factor: 2,
      jitter: 0.2,
      setup,
      // Resolve at once so every listener below is in place before the first attempt.
      waitForConnect: false,
      ...(options.reconnectDelay === undefined ? {} : { calculateDelay: options.reconnectDelay }),
    },
  });

  recovering.on('connect', () => logger.info('broker connected', { queue: topology.queueName }));
  recovering.on('disconnect', (err) => {
    current = null;
    logger.warn('broker connection lost', { err });
  });
  recovering.on('reconnect-scheduled', ({ attempt, delay, error }) => {
    logger.warn('broker reconnect scheduled', { attempt, delayMs: delay, err: error });
  });
  recovering.on('reconnect-failed', (err) => logger.fatal('broker recovery gave up', { err }));
  // Every connection error is followed by 'disconnect' carrying the same error, logged there.
  recovering.on('error', (err) => logger.debug('broker connection error', { err }));
  recovering.on('blocked', (reason) => {
    publisher.setBlocked(true);
    logger.warn('broker blocked publishing', { reason });
  });
  recovering.on('unblocked', () => {
    publisher.setBlocked(false);
    logger.info('broker unblocked publishing');
  });

  return {
    waitForConnect: async () => {
      await recovering.waitForConnect();
    },
    close: async () => {
      closing = true;
      const open = current;
      if (open === null) return recovering.close();
      await closeWithin(open.channel, () => open.channel.close());
      await closeWithin(open.model, () => recovering.close());
    },
  };
}
