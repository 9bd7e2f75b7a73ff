// Connections per client address, nginx's limit_conn: counted as each connection arrives, before
// Node or Bun read a byte of it, so one address cannot hold the sockets every other client needs
// (MAX_CONNECTIONS bounds them all). The address is the socket's peer, never X-Forwarded-For.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimitOptions {
  readonly maxPerClient: number;
  /**
   * The key a peer counts under (clientKey: IPv6 by network, so rotating addresses within one
   * allocation does not escape), or undefined for an exempt peer: a trusted proxy carries many clients.
   */
  readonly keyOf: (address: string) => string | undefined;
  /** A connection over the cap, closed unanswered. */
  readonly onRefused: () => void;
}

/** Open connections by client key; a key leaves the map with its last connection. */
export class ConnectionCounts {
  readonly #open = new Map<string, number>();
  readonly #max: number;

  constructor(maxPerClient: number) {
    this.#max = maxPerClient;
  }

  /** Clients with at least one open connection. */
  get size(): number {
    return this.#open.size;
  }

  /** Counts one more connection of `key`, or returns false when it already has the most it may. */
  take(key: string): boolean {
    const open = this.#open.get(key) ?? 0;
    if (open >= this.#max) return false;
    this.#open.set(key, open + 1);
    return true;
  }

  release(key: string): void {
    const open = (this.#open.get(key) ?? 1) - 1;
    if (open <= 0) this.#open.delete(key);
    else this.#open.set(key, open);
  }
}

/** Caps `server`'s connections per client; prepended, so no other 'connection' listener sees a refused one. */
export function limitConnectionsPerClient(server: Server, options: ConnectionLimitOptions): ConnectionCounts {
  const counts = new ConnectionCounts(options.maxPerClient);
  server.prependListener('connection', (socket: Socket) => {
    const key = options.keyOf(socket.remoteAddress ?? '');
    if (key === undefined) return;
    if (!counts.take(key)) {
      options.onRefused();
      socket.destroy();
      return;
    }
    // The key is kept here: Bun no longer reports remoteAddress once the socket has closed. A socket
    // the server has ended (an answer with Connection: close) serves nothing more, so it counts no
    // more either: Bun reports its 'close' only some time later, long enough for a client whose
    // answers close their connections to be refused while it holds fewer than the cap.
    let counted = true;
    const release = () => {
      if (counted) counts.release(key);
      counted = false;
    };
    socket.once('finish', release).once('close', release);
  });
  return counts;
}
