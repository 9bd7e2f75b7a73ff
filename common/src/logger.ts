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
  // A line is joined as text from its parts rather than stringified from one object merging them,
  // which costs an object and a copy of every field per line (the access log writes one per
  // request: BENCHMARKS.md section 0). A field named like a binding, level, time or msg comes out
  // twice, and a JSON reader keeps the later value, as the merged object kept it.
  const bound = Object.keys(bindings).length === 0 ? '' : `,${JSON.stringify(bindings).slice(1, -1)}`;

  const log = (level: LevelName) => {
    const head = `{"level":${LEVELS[level]},"time":`;
    return (msg: string, fields: Fields = {}) => {
      if (LEVELS[level] < min) return;
      const own = JSON.stringify(fields.err === undefined ? fields : { ...fields, err: serializeError(fields.err) });
      write(`${head}${now()}${bound}${own.length > 2 ? `,${own.slice(1, -1)}` : ''},"msg":${JSON.stringify(msg)}}`);
    };
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

// stdout to a file or pipe is a blocking write on Linux, and the write per line, then per event-loop
// turn, were each a measurable share of the API's CPU under load (BENCHMARKS.md, "Measurements
// behind code comments" and section 0). Lines are gathered and written once FLUSH_CHARS of them
// wait or the oldest has waited FLUSH_MS, and whatever is pending is written on exit, so a clean
// exit, process.exit() or a crash loses nothing; only SIGKILL can lose the last FLUSH_MS of lines.
const FLUSH_CHARS = 64 * 1024;
const FLUSH_MS = 20;
let pending: string[] = [];
let pendingChars = 0;
let timer: ReturnType<typeof setTimeout> | undefined;

function flush(): void {
  if (pending.length === 0) return;
  const text = pending.join('\n') + '\n';
  pending = [];
  pendingChars = 0;
  process.stdout.write(text);
}

function writeStdout(line: string): void {
  pending.push(line);
  pendingChars += line.length;
  if (pendingChars >= FLUSH_CHARS) return flush();
  if (timer !== undefined) return;
  // Never holds the process open: the exit handler writes what is left.
  timer = setTimeout(() => {
    timer = undefined;
    flush();
  }, FLUSH_MS);
  timer.unref?.();
}

process.on('exit', flush);

function serializeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  const code = (err as { code?: unknown }).code;
  return { type: err.name, message: err.message, ...(code === undefined ? {} : { code }), stack: err.stack };
}
