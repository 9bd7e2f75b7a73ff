// The bare confirm baseline: node:http that reads the body and publishes it with amqplib publisher
// confirms, with no validation, no limiter, no metrics and no routing. The API's throughput is
// reported as a ratio of this one's, measured in the same run, on the same kind of queue: the
// driver passes the API's queue arguments (common/src/broker/topology.ts) in QUEUE_ARGUMENTS.
import http from 'node:http';
import amqp from 'amqplib';

const url = process.env.RABBITMQ_URL;
if (!url) throw new Error('RABBITMQ_URL is required');
const queue = process.env.QUEUE_NAME ?? 'bench_baseline';
const queueArguments = JSON.parse(process.env.QUEUE_ARGUMENTS ?? '{}') as Record<string, unknown>;
const connection = await amqp.connect(url);
const channel = await connection.createConfirmChannel();
await channel.assertQueue(queue, { durable: true, arguments: queueArguments });

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    channel.sendToQueue(queue, Buffer.concat(chunks), { persistent: true, contentType: 'application/json' }, (err) => {
      res.writeHead(err ? 503 : 202, { 'content-type': 'application/json' });
      res.end(err ? '{"status":"unavailable"}' : '{"status":"accepted"}');
    });
  });
});
server.listen(Number(process.env.API_PORT ?? 3100), '127.0.0.1', () => {
  console.log(JSON.stringify({ msg: 'listening', port: (server.address() as { port: number }).port }));
});
process.on('SIGTERM', () => server.close(() => void connection.close().then(() => process.exit(0))));
