// Preloaded into a service process (`node --import`, `bun --preload`) to time its event loop from
// outside: each line read on stdin ("reset" starts a new span, anything else just asks) is answered
// on stdout with {"probe": <line>, "loopBlockMs": <longest block of the span so far>}.
import { createInterface } from 'node:readline';
import { monitorLoopBlock } from './loopBlock.ts';

const loop = monitorLoopBlock();
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'reset') loop.reset();
  process.stdout.write(`${JSON.stringify({ probe: line, loopBlockMs: loop.maxMs() })}\n`);
});
