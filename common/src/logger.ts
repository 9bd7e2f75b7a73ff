// JSON-lines logger with pino's output shape (numeric level, time, msg, bindings, err) and no pino.

export type LevelName = 'debug' | 'info' | 'warn' | 'error' | 'fatal';

const LEVELS: Readonly<Record<LevelName, number>> = { debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

export type Fields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  fatal(msg: string, fields?: Fields): void;
  child(bindings: Fields): Logger;
}

export interface LoggerOptions {
  readonly level?: LevelName;
  readonly write?: (line: string) => void;
  readonly now?: () => number;
}

export function createLogger(bindings: Fields = {}, options: LoggerOptions = {}): Logger {
  const min = LEVELS[options.level ?? 'info'];
  const write = options.write ?? writeStdout;
  const now = options.now ?? Date.now;

  const log = (level: LevelName) => (msg: string, fields: Fields = {}) => {
    if (LEVELS[level] < min) return;
    const line: Record<string, unknown> = { level: LEVELS[level], time: now(), ...bindings, ...fields, msg };
    if (fields.err !== undefined) line.err = serializeError(fields.err);
    write(JSON.stringify(line));
  };

  return {
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    fatal: log('fatal'),
    child: (more) => createLogger({ ...bindings, ...more }, options),
  };
}

// stdout to a file or pipe is a blocking write on Linux, and one per log line was a measurable share
// of the API's CPU under load (BENCHMARKS.md, "Measurements behind code comments"). Lines are
// gathered and written once per event-loop turn, and whatever is pending is written on exit, so a
// clean exit or process.exit() loses nothing.
let pending: string[] = [];

function flush(): void {
  if (pending.length === 0) return;
  const text = pending.join('\n') + '\n';
  pending = [];
  process.stdout.write(text);
}

function writeStdout(line: string): void {
  if (pending.push(line) === 1) setImmediate(flush);
}

process.on('exit', flush);

function serializeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  const code = (err as { code?: unknown }).code;
  return { type: err.name, message: err.message, ...(code === undefined ? {} : { code }), stack: err.stack };
}
