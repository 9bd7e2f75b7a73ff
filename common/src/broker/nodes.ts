// RABBITMQ_URL names one broker node or a cluster's nodes, comma-separated, each with its own
// credentials if need be. Nodes are named in logs and errors by host:port, never by URL: a URL
// carries a password.

export interface BrokerNode {
  readonly url: string;
  /** host:port, for logs. */
  readonly label: string;
}

const PROTOCOLS: Readonly<Record<string, number>> = { 'amqp:': 5672, 'amqps:': 5671 };

/** The nodes of a list, or the problems with it (each naming the entry by position, never by text). */
export function parseNodeList(text: string): { readonly nodes: readonly BrokerNode[]; readonly problems: readonly string[] } {
  const entries = text.split(',').map((entry) => entry.trim());
  const nodes: BrokerNode[] = [];
  const problems: string[] = [];
  entries.forEach((entry, index) => {
    const where = entries.length === 1 ? 'RABBITMQ_URL' : `RABBITMQ_URL entry ${index + 1} of ${entries.length}`;
    const node = parseNode(entry);
    if (node === undefined) problems.push(`${where} must be an amqp:// or amqps:// URL${entry === '' ? ' (it is empty)' : ''}`);
    else nodes.push(node);
  });
  return { nodes, problems };
}

function parseNode(entry: string): BrokerNode | undefined {
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    return undefined;
  }
  const defaultPort = PROTOCOLS[url.protocol];
  if (defaultPort === undefined || url.hostname === '') return undefined;
  return { url: entry, label: `${url.hostname}:${url.port || defaultPort}` };
}

/** amqplib takes the heartbeat only from the URL's query when given a URL string. */
export function withHeartbeat(url: string, seconds: number): string {
  const parsed = new URL(url);
  parsed.searchParams.set('heartbeat', String(seconds));
  return parsed.toString();
}
