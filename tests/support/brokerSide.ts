// Broker-side faults for one process: closes, from RabbitMQ's end, only the AMQP connections that
// process holds, so a fault test never disturbs anything else using the same broker.
import { execFileSync } from 'node:child_process';

const run = (command: string, args: readonly string[]) => execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });

/** False when rabbitmqctl and ss are here, else why the broker-side fault cannot be played. */
export function brokerSideMissing(): string | false {
  try {
    run('rabbitmqctl', ['version']);
    run('ss', ['-V']);
    return false;
  } catch {
    return 'rabbitmqctl or ss is not available here (both are in CI, beside the broker); the API integration test covers a cut broker connection';
  }
}

/**
 * Asks RabbitMQ to close every connection `pid` has to the broker at `brokerUrl`, as
 * `rabbitmqctl close_connection` does after a policy change or an operator's command.
 * Returns how many it closed. RabbitMQ names a connection "<client address> -> <broker address>".
 */
export function closeConnectionsOf(pid: number, brokerUrl: string, reason: string): number {
  const port = new URL(brokerUrl).port || '5672';
  const names = run('ss', ['-Htnp', 'state', 'established', `( dport = :${port} )`])
    .split('\n')
    .filter((line) => line.includes(`pid=${pid},`))
    .map((line) => {
      const [local, peer] = line.trim().split(/\s+/).slice(2, 4);
      return `${local} -> ${peer}`;
    });
  const connections = run('rabbitmqctl', ['-q', 'list_connections', '--no-table-headers', 'pid', 'name'])
    .split('\n')
    .map((line) => line.split('\t'))
    .filter(([, name]) => name !== undefined && names.includes(name));
  for (const [connectionPid] of connections) run('rabbitmqctl', ['-q', 'close_connection', connectionPid!, reason]);
  return connections.length;
}
