// Reading settings from the environment: every problem is collected, so start-up fails once naming
// each bad variable. The settings both services read are in sharedSettings.ts.

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export class EnvReader {
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #defaults: Readonly<Record<string, string | number>>;
  readonly #problems: string[] = [];
  readonly #invalid = new Set<string>();

  constructor(env: Readonly<Record<string, string | undefined>>, defaults: Readonly<Record<string, string | number>>) {
    this.#env = env;
    this.#defaults = defaults;
  }

  /** The value, or its default; an empty value counts as unset, so `API_PORT=` means the default. */
  text(name: string): string {
    const value = this.#env[name];
    return value === undefined || value === '' ? String(this.#defaults[name] ?? '') : value;
  }

  /** Whether `name` has a value: unset and empty alike are not. */
  isSet(name: string): boolean {
    return (this.#env[name] ?? '') !== '';
  }

  required(name: string, what: string): string {
    const value = this.text(name);
    if (value === '') this.fail(name, `${name} is required (${what})`);
    return value;
  }

  /** A whole number in [min, max]; a bad one is reported and read as its default. */
  integer(name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const text = this.text(name);
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    if (value >= min && value <= max) return value;
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    this.fail(name, `${name} must be an integer ${range} (got "${text}")`);
    return Number(this.#defaults[name]);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[]): T {
    const text = this.text(name);
    if ((allowed as readonly string[]).includes(text)) return text as T;
    this.fail(name, `${name} must be one of ${allowed.join(', ')} (got "${text}")`);
    return this.#defaults[name] as T;
  }

  fail(name: string, problem: string): void {
    this.#invalid.add(name);
    this.#problems.push(problem);
  }

  /** True when none of `names` was reported: cross-checks between variables only make sense then. */
  valid(...names: string[]): boolean {
    return names.every((name) => !this.#invalid.has(name));
  }

  /** The finished configuration, frozen; throws one ConfigError listing every problem. */
  done<T extends object>(config: T): Readonly<T> {
    if (this.#problems.length > 0) throw new ConfigError(this.#problems);
    return Object.freeze(config);
  }
}

/** A URL with a host and one of `protocols` (e.g. `['amqp:', 'amqps:']`). */
export function isUrlOf(value: string, protocols: readonly string[]): boolean {
  try {
    const url = new URL(value);
    return protocols.includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
}
