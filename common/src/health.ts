// The probes both services answer, by the same paths and with the same body:
// - GET /health/live: 200 while the process and its event loop run; it checks no dependency, so a
//   liveness probe never restarts a service that is only waiting for RabbitMQ or MongoDB;
// - GET /health/ready (and GET /health, its older name): 200 when every dependency is up, else 503.
//   Dependencies a service can do without (the API's Redis, whose loss only makes the rate limit
//   per replica) are reported under `info`, and never make it 503.
import type { DependencyState, HealthReport } from '@event-tracker/shared';

export const LIVE_PATH = '/health/live';
export const READY_PATHS = ['/health/ready', '/health'] as const;

/** A check answers whether its dependency is usable now. */
export type HealthChecks = Readonly<Record<string, () => boolean | Promise<boolean>>>;

/** Answering at all is the proof: a blocked event loop answers nothing. */
export const LIVE: HealthReport = { status: 'ok', checks: {} };

export async function readiness(checks: HealthChecks, info: HealthChecks = {}): Promise<HealthReport> {
  const states = await statesOf(checks);
  const status = Object.values(states).every((state) => state === 'up') ? 'ok' : 'unavailable';
  return Object.keys(info).length === 0 ? { status, checks: states } : { status, checks: states, info: await statesOf(info) };
}

async function statesOf(checks: HealthChecks): Promise<Record<string, DependencyState>> {
  const states: Record<string, DependencyState> = {};
  for (const [name, check] of Object.entries(checks)) states[name] = (await check()) ? 'up' : 'down';
  return states;
}
