// A loopback TCP proxy that a test can cut and restore, to take a real broker or database
// "down" for one process without stopping the shared server.
import net from 'node:net';
import { once } from 'node:events';

export class TcpProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #cut = false;
  #frozen = false;

  private constructor(targetHost: string, targetPort: number) {
    this.#server = net.createServer((client) => {
      if (this.#cut) return void client.destroy();
      const upstream = net.connect(targetPort, targetHost);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      if (!this.#frozen) client.pipe(upstream).pipe(client);
    });
  }

  /** Starts a proxy on 127.0.0.1 in front of `target` (a URL whose host and port are used). */
  static async start(target: string): Promise<TcpProxy> {
    const url = new URL(target);
    const defaultPort = url.protocol.startsWith('amqp') ? 5672 : 27017;
    const proxy = new TcpProxy(url.hostname, Number(url.port || defaultPort));
    proxy.#server.listen(0, '127.0.0.1');
    await once(proxy.#server, 'listening');
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** `target` with its host and port replaced by this proxy's. */
  urlFor(target: string): string {
    const url = new URL(target);
    url.host = `127.0.0.1:${this.port}`;
    return url.toString();
  }

  /** Drops every open connection and refuses new ones until `restore()`. */
  cut(): void {
    this.#cut = true;
    for (const socket of this.#sockets) socket.destroy();
  }

  /** Stops forwarding bytes but keeps every connection open, as a silently dead network path does. */
  freeze(): void {
    this.#frozen = true;
    for (const socket of this.#sockets) socket.unpipe().pause();
  }

  /** Forwards new connections again; connections left over from `freeze()` are dropped. */
  restore(): void {
    if (this.#frozen) for (const socket of this.#sockets) socket.destroy();
    this.#cut = false;
    this.#frozen = false;
  }

  async close(): Promise<void> {
    this.cut();
    this.#server.close();
    await once(this.#server, 'close');
  }
}
