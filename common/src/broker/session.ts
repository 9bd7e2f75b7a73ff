// The one broker session loop both services run: connect to a node of the list (bounded, with a
// heartbeat), declare the topology, open a confirm channel, hand it to the publisher or the
// consumer; on loss, move to the next node at once, and back off (capped, exponential, jittered)
// only once every node has failed in a row; close with a deadline.
//
// The back-off resets only once a session has done its work, which the owner reports with
// `worked()` (the consumer after basic.consume succeeds, the publisher at a confirm). A broker that
// accepts connections but refuses what we do with them (ACCESS_REFUSED on basic.consume, say) is
// then retried ever more slowly, not every few milliseconds.
//
// amqplib 2's own recovery (`connect(url, { recovery })`) re-opens the connection only, to one
// URL: a channel the broker closes alone (consumer_timeout, PRECONDITION_FAILED) leaves the
// connection up and is not recovered. Here a lost channel ends its session, and the next session
// rebuilds both, on the next node.
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { backoffDelay, type BackoffOptions } from '../backoff.ts';
import { sleep, systemClock, type Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import { closeWithin, connectNode } from './connect.ts';
import type { BrokerNode } from './nodes.ts';
import { declareTopology, type TopologyOptions } from './topology.ts';

export interface SessionHandlers {
  /** A new session, its topology declared. Throwing gives the session up (and counts as a failure). */
  opened(channel: ConfirmChannel, connection: ChannelModel): Promise<void> | void;
  /** That session's channel or connection is gone; called once per opened session. */
  lost(): void;
}

export interface BrokerSessionOptions {
  readonly nodes: readonly BrokerNode[];
  readonly heartbeatSeconds: number;
  readonly topology: TopologyOptions;
  readonly retry: BackoffOptions;
  /** Shown in the management UI's connection list. */
  readonly connectionName: string;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly handlers: SessionHandlers;
}

interface Open {
  readonly connection: ChannelModel;
  readonly channel: ConfirmChannel;
}

export class BrokerSession {
  readonly #options: BrokerSessionOptions;
  #open: Open | undefined;
  #running: Promise<void> | undefined;
  /** Sessions since one last did its work. */
  #failures = 0;
  /** The node the next session tries. */
  #next = 0;
  /** Aborted by close(): ends the loop and the back-off wait in progress. */
  readonly #closing = new AbortController();

  constructor(options: BrokerSessionOptions) {
    if (options.nodes.length === 0) throw new Error('BrokerSession needs at least one node');
    this.#options = options;
  }

  get #closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /** Connects in the background, and again after every loss, until close(). */
  start(): void {
    this.#running ??= this.#run();
  }

  /** The current session did what it is for: the next reconnect starts from the shortest wait. */
  worked(): void {
    this.#failures = 0;
  }

  /** Closes the channel, then the connection, each within a deadline, and stops reconnecting. */
  async close(): Promise<void> {
    this.#closing.abort();
    await this.#closeOpen();
    await this.#running;
  }

  async #closeOpen(): Promise<void> {
    const open = this.#open;
    if (open === undefined) return;
    await closeWithin(open.channel, () => open.channel.close());
    await closeWithin(open.connection, () => open.connection.close());
  }

  async #run(): Promise<void> {
    const { logger, retry, nodes } = this.#options;
    while (!this.#closed) {
      // Counted before the session, so a session that ends without calling worked() raises it.
      this.#failures += 1;
      const node = nodes[this.#next]!;
      this.#next = (this.#next + 1) % nodes.length;
      try {
        const { lost } = await this.#connect(node);
        // close() may have run while we were connecting, before there was a session to close.
        if (this.#closed) await this.#closeOpen();
        await lost;
      } catch (err) {
        logger.warn('could not open a broker session', { node: node.label, err });
      }
      this.#open = undefined;
      if (this.#closed) break;
      const delayMs = reconnectDelay(this.#failures, nodes.length, retry);
      logger.info('reconnecting to the broker', { node: nodes[this.#next]!.label, delayMs, attempt: this.#failures });
      if (delayMs > 0) await sleep(this.#options.clock ?? systemClock, delayMs, this.#closing.signal);
    }
  }

  /**
   * Opens a session. `lost` settles when its connection or channel is gone. It comes wrapped in an
   * object because an async function returning a promise adopts it: returned bare, the caller's
   * await would last until the connection was lost, and a close() made while connecting would
   * never close the session it was waiting for.
   */
  async #connect(node: BrokerNode): Promise<{ lost: Promise<void> }> {
    const { logger, topology, handlers } = this.#options;
    const connection = await connectNode(node, this.#options);
    let opened = false;
    let markLost: () => void = () => {};
    const lost = new Promise<void>((resolve) => (markLost = resolve));
    let ended = false;
    const end = (what: 'connection' | 'channel') => {
      if (ended) return;
      ended = true;
      if (this.#closed) logger.info(`broker ${what} closed`, { node: node.label });
      else logger.warn('broker connection lost', { node: node.label, closed: what });
      if (opened) handlers.lost();
      void connection.close().catch(() => {});
      markLost();
    };
    // 'error' is always followed by 'close'; an 'error' event without a listener would crash the process.
    connection.on('error', (err: Error) => logger.warn('broker connection error', { node: node.label, err }));
    connection.on('close', () => end('connection'));
    try {
      await declareTopology(connection, topology, logger);
      const channel = await connection.createConfirmChannel();
      channel.on('error', (err: Error) => logger.warn('broker channel error', { node: node.label, err }));
      channel.on('close', () => end('channel'));
      this.#open = { connection, channel };
      logger.info('connected to the broker', { node: node.label, exchange: topology.exchange });
      opened = true;
      await handlers.opened(channel, connection);
      return { lost };
    } catch (err) {
      await closeWithin(connection, () => connection.close());
      throw err;
    }
  }
}

/**
 * The wait before the next session, after `failures` sessions in a row that did not work: none
 * while some node of the list has not been tried since the last working session (a lost node says
 * nothing about the others), then the back-off, counted from the round that failed whole.
 */
export function reconnectDelay(failures: number, nodes: number, retry: BackoffOptions, random?: () => number): number {
  if (failures < nodes) return 0;
  return backoffDelay(failures - nodes + 1, retry, random);
}
