/**
 * Structured logging for the whole product: one line per event, logfmt-style
 * (`ts=… level=… mod=… msg="…" key=value`), to stderr so stdout stays free for
 * CLI output. Level from LOG_LEVEL (`debug` | `info` | `warn` | `error` | `silent`).
 *
 * @defaultValue LOG_LEVEL=info
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level | 'silent', number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

let threshold = ORDER[(process.env.LOG_LEVEL as Level) ?? 'info'] ?? ORDER.info;

/** Change the global log level at run time (tests use `silent`). */
export function setLogLevel(level: Level | 'silent'): void {
  threshold = ORDER[level];
}

function fmtValue(v: unknown): string {
  if (v === undefined) return '';
  if (v instanceof Error) return JSON.stringify(v.message);
  const s = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /^[A-Za-z0-9_.:/@+\-]+$/.test(s) ? s : JSON.stringify(s);
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

/** A logger for module `mod`; `base` fields are added to every line (e.g. callId). */
export function logger(mod: string, base: Record<string, unknown> = {}): Logger {
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[level] < threshold) return;
    let line = `ts=${new Date().toISOString()} level=${level} mod=${mod} msg=${fmtValue(msg)}`;
    for (const [k, v] of Object.entries({ ...base, ...fields })) {
      if (v !== undefined) line += ` ${k}=${fmtValue(v)}`;
    }
    process.stderr.write(line + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => logger(mod, { ...base, ...f }),
  };
}
