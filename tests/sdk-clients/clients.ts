// The real Segment and RudderStack Node SDKs, installed here apart from the product (npm ci
// --prefix tests/sdk-clients), behind one small interface for tests/e2e/sdkClients.test.ts. Each
// client is configured as an application would (host and write key), with delivery settings that
// keep a test short and bounded; their own batching, retries and back-off are left as they are.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

// Loaded from this folder's node_modules when a client is made, so that the root typecheck and the
// suites that do not use them need no install here. Their shapes below are what this file uses of
// their own declarations (analytics-node's dist/types/app/analytics-node.d.ts, rudder-sdk-node's
// index.d.ts); the e2e test is what holds them to it.
const require = createRequire(import.meta.url);

export type Properties = Record<string, string | number | boolean>;

type Callback = (error?: unknown) => void;

interface Calls {
  track(call: { userId: string; event: string; properties: Properties; timestamp?: Date }, callback: Callback): unknown;
  identify(call: { userId: string; traits: Properties; timestamp?: Date }, callback: Callback): unknown;
  page(call: { userId: string; name: string; properties: Properties; timestamp?: Date }, callback: Callback): unknown;
}

interface SegmentAnalytics extends Calls {
  on(event: 'error', listener: (error: unknown) => void): unknown;
  flush(): Promise<void>;
  closeAndFlush(options: { timeout: number }): Promise<void>;
}
type SegmentSettings = { writeKey: string; host: string; flushAt: number; flushInterval: number; maxRetries: number; httpRequestTimeout: number };

interface RudderAnalytics extends Calls {
  flush(): Promise<void>;
}
type RudderOptions = { dataPlaneUrl: string; flushAt: number; flushInterval: number; retryCount: number; logLevel: string; errorHandler: (error: unknown) => void };

/** The calls the test makes, each with the user it is about; `timestamp` is left to the SDK when absent. */
export interface SdkClient {
  readonly name: string;
  track(call: { readonly userId: string; readonly event: string; readonly properties: Properties; readonly timestamp?: Date }): void;
  identify(call: { readonly userId: string; readonly traits: Properties; readonly timestamp?: Date }): void;
  page(call: { readonly userId: string; readonly name: string; readonly properties: Properties; readonly timestamp?: Date }): void;
  /**
   * Sends what is queued and waits until the SDK has settled every call made so far (delivered, or
   * given up after its own retries); resolves with the errors it reported, one per failed call, as
   * `[<status>] <text>` (Segment's own wording), none when all went through.
   */
  flush(): Promise<readonly string[]>;
  /** Stops the SDK's timers. */
  close(): Promise<void>;
}

/** False when both SDKs are installed here, else how to install them; under REQUIRE_SERVICES=1, a failure. */
export function clientsMissing(): string | false {
  const installed = ['@segment/analytics-node', '@rudderstack/rudder-sdk-node'].every((name) => existsSync(new URL(`./node_modules/${name}/package.json`, import.meta.url)));
  if (installed) return false;
  const reason = 'the SDK clients are not installed: run `npm ci --prefix tests/sdk-clients --ignore-scripts`';
  if (process.env.REQUIRE_SERVICES === '1') throw new Error(`REQUIRE_SERVICES=1 but ${reason}`);
  return reason;
}

/** Retries each SDK makes before giving a call up: enough to outlast a short broker outage. */
const MAX_RETRIES = 6;

/** Tracks the callback of every call, so flush() can wait for each to settle. */
class Outcomes {
  readonly #pending: Array<Promise<unknown>> = [];

  /** A callback for one call; it settles that call's outcome with its error, if any. */
  callback(): (error?: unknown) => void {
    let settle: (error: unknown) => void = () => {};
    this.#pending.push(new Promise((resolve) => (settle = resolve)));
    return (error) => settle(error ?? undefined);
  }

  async settled(): Promise<readonly string[]> {
    const outcomes = await Promise.all(this.#pending.splice(0));
    return outcomes.filter((error) => error !== undefined).map(describeError);
  }
}

/** Segment reports `Error('[401] Unauthorized')`; RudderStack the AxiosError, whose response says the same. */
function describeError(error: unknown): string {
  const response = (error as { response?: { status?: unknown; statusText?: unknown } }).response;
  if (response !== undefined) return `[${String(response.status)}] ${String(response.statusText)}`;
  return error instanceof Error ? error.message : String(error);
}

/** `@segment/analytics-node`: fetch, JSON, `Authorization: Basic base64(writeKey:)`. */
export function segmentClient(host: string, writeKey: string): SdkClient {
  const { Analytics } = require('@segment/analytics-node') as { Analytics: new (settings: SegmentSettings) => SegmentAnalytics };
  // A batch is sent when flush() is called (flushAt and flushInterval out of the way).
  const analytics = new Analytics({ writeKey, host, flushAt: 100, flushInterval: 60_000, maxRetries: MAX_RETRIES, httpRequestTimeout: 10_000 });
  const outcomes = new Outcomes();
  analytics.on('error', () => {}); // each call's callback reports its own failure
  return {
    name: '@segment/analytics-node',
    track: (call) => void analytics.track({ ...call }, outcomes.callback()),
    identify: (call) => void analytics.identify({ ...call }, outcomes.callback()),
    page: (call) => void analytics.page({ ...call }, outcomes.callback()),
    async flush() {
      await analytics.flush();
      return outcomes.settled();
    },
    close: () => analytics.closeAndFlush({ timeout: 5_000 }),
  };
}

/** `@rudderstack/rudder-sdk-node`: axios, gzip, `Authorization: Basic base64(writeKey:)`. */
export function rudderClient(host: string, writeKey: string): SdkClient {
  const Analytics = require('@rudderstack/rudder-sdk-node') as new (writeKey: string, options: RudderOptions) => RudderAnalytics;
  const errors: unknown[] = [];
  // Its first call is sent at once, alone; later ones wait for flush(). Without an errorHandler,
  // that first flush would reject with nobody awaiting it.
  const analytics = new Analytics(writeKey, { dataPlaneUrl: host, flushAt: 100, flushInterval: 60_000, retryCount: MAX_RETRIES, logLevel: 'none', errorHandler: (error) => errors.push(error) });
  const outcomes = new Outcomes();
  return {
    name: '@rudderstack/rudder-sdk-node',
    track: (call) => void analytics.track({ ...call }, outcomes.callback()),
    identify: (call) => void analytics.identify({ ...call }, outcomes.callback()),
    page: (call) => void analytics.page({ ...call }, outcomes.callback()),
    async flush() {
      await analytics.flush();
      const reported = await outcomes.settled();
      return reported.length > 0 ? reported : errors.splice(0).map(describeError);
    },
    async close() {
      await analytics.flush();
    },
  };
}
