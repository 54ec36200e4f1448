/**
 * Structured logging for the whole product: one line per event, to stderr so stdout stays
 * free for CLI output.
 *
 * - `logfmt` (default): `ts=… level=… mod=… msg="…" key=value`, for people and grep;
 * - `json` (`LOG_FORMAT=json`): one JSON object per line through pino, for log shippers
 *   (`{"level":"info","ts":"…","mod":"call","msg":"call start","callId":"…",…}`); Error
 *   values become their message, like in logfmt.
 *
 * Level from LOG_LEVEL (`debug` | `info` | `warn` | `error` | `silent`).
 *
 * @defaultValue LOG_LEVEL=info, LOG_FORMAT=logfmt
 */
import pino from 'pino';

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'logfmt' | 'json';
const ORDER: Record<Level | 'silent', number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

let threshold = ORDER[(process.env.LOG_LEVEL as Level) ?? 'info'] ?? ORDER.info;
let json: pino.Logger | null = null;

/** Change the global log level at run time (tests use `silent`). */
export function setLogLevel(level: Level | 'silent'): void {
  threshold = ORDER[level];
}

/** Switch the line format (main does this from the config; `LOG_FORMAT` sets it at load). */
export function setLogFormat(format: LogFormat): void {
  if (format === 'json') {
    json ??= pino(
      {
        level: 'debug', // the threshold above filters; pino only formats
        base: null,
        messageKey: 'msg',
        timestamp: () => `,"ts":"${new Date().toISOString()}"`,
        formatters: { level: (label) => ({ level: label }) },
      },
      pino.destination({ fd: 2, sync: true }),
    );
  } else json = null;
}

if (process.env.LOG_FORMAT === 'json') setLogFormat('json');

function fmtValue(v: unknown): string {
  if (v === undefined) return '';
  if (v instanceof Error) return JSON.stringify(v.message);
  const s = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /^[A-Za-z0-9_.:/@+\-]+$/.test(s) ? s : JSON.stringify(s);
}

/** Fields for the JSON format: Error → message, undefined dropped. */
function jsonFields(mod: string, fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { mod };
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    out[k] = v instanceof Error ? v.message : v;
  }
  return out;
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
    if (json) {
      json[level](jsonFields(mod, { ...base, ...fields }), msg);
      return;
    }
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
