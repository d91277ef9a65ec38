import type { Logger, Redactor } from '@launch/core';
import type { LineSink } from './sink.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'human' | 'json';
const RANK: Record<LogLevel, number> = { debug: 20, info: 30, warn: 40, error: 50 };

export interface CliLoggerOptions {
  sink: LineSink;
  level: LogLevel;
  format: LogFormat;
  redactor: Redactor;
  bindings?: Record<string, unknown>;
  now?: () => Date;
}

/**
 * The pino-compatible logger handed to the libraries. Objects are scrubbed field by field
 * (`_wandb_api_key`, `password`, …) and the final line once more by the sink's redactor.
 */
export function createCliLogger(options: CliLoggerOptions): Logger {
  const now = options.now ?? (() => new Date());
  const bindings = options.bindings ?? {};
  const emit = (level: LogLevel, objOrMsg: object | string, msg?: string) => {
    if (RANK[level] < RANK[options.level]) return;
    const fields: Record<string, unknown> = typeof objOrMsg === 'string' ? {} : { ...serializeErrors(objOrMsg) };
    const text = typeof objOrMsg === 'string' ? objOrMsg : (msg ?? '');
    const clean = options.redactor.redactValue({ ...bindings, ...fields });
    if (options.format === 'json') {
      options.sink.write(JSON.stringify({ level, time: now().toISOString(), ...clean, msg: text }));
    } else {
      const extra = Object.entries(clean)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      options.sink.write(`${now().toISOString()} ${level.toUpperCase().padEnd(5)} ${text}${extra ? ' ' + extra : ''}`);
    }
  };
  return {
    debug: (o, m) => emit('debug', o, m),
    info: (o, m) => emit('info', o, m),
    warn: (o, m) => emit('warn', o, m),
    error: (o, m) => emit('error', o, m),
    child: (more) => createCliLogger({ ...options, bindings: { ...bindings, ...more } }),
  };
}

/** Errors do not JSON-serialise; keep what a reader needs. */
function serializeErrors(obj: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    out[k] = v instanceof Error ? { name: v.name, message: v.message, ...('code' in v ? { code: (v as { code: unknown }).code } : {}) } : v;
  }
  return out;
}

/**
 * `-v` count → the level of internal logs echoed to stderr: errors by default (the progress lines
 * already say what happened to each job), info at -v, debug at -vv.
 */
export function levelForVerbosity(verbosity: number): LogLevel {
  return verbosity >= 2 ? 'debug' : verbosity === 1 ? 'info' : 'error';
}

/** Sends each record to several loggers (stderr at the verbosity's level, the log file at debug). */
export function teeLogger(...loggers: Logger[]): Logger {
  return {
    debug: (o, m) => loggers.forEach((l) => l.debug(o, m)),
    info: (o, m) => loggers.forEach((l) => l.info(o, m)),
    warn: (o, m) => loggers.forEach((l) => l.warn(o, m)),
    error: (o, m) => loggers.forEach((l) => l.error(o, m)),
    child: (b) => teeLogger(...loggers.map((l) => (l.child ? l.child(b) : l))),
  };
}
