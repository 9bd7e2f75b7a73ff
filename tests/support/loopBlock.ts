// How long the event loop was held by one piece of synchronous work: the longest a 1 ms timer fired
// late since the last reset. perf_hooks' histogram does the sampling, on Node and on Bun alike.
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface LoopBlockMonitor {
  /** Starts a new span. */
  reset(): void;
  /** The longest block since the last reset, in milliseconds (0 when the loop never lagged). */
  maxMs(): number;
  stop(): void;
}

export function monitorLoopBlock(): LoopBlockMonitor {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  return {
    reset: () => histogram.reset(),
    maxMs: () => histogram.max / 1e6,
    stop: () => histogram.disable(),
  };
}
