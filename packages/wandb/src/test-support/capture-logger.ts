import type { Logger } from '@launch/core';

/** A logger that keeps every line as JSON text, so tests can search it for secrets. */
export function captureLogger(): Logger & { lines: string[]; text(): string } {
  const lines: string[] = [];
  const log = (level: string) => (obj: object | string, msg?: string) => {
    lines.push(JSON.stringify({ level, ...(typeof obj === 'string' ? { msg: obj } : { ...obj, msg }) }));
  };
  const logger = {
    lines,
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    child: () => logger,
    text: () => lines.join('\n'),
  };
  return logger;
}

/** Every string the error chain carries (message, hint, causes), for secret checks. */
export function errorText(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let depth = 0; e && depth < 8; depth++) {
    if (e instanceof Error) {
      parts.push(e.message, String((e as { hint?: unknown }).hint ?? ''), e.stack ?? '');
      e = (e as { cause?: unknown }).cause;
    } else {
      parts.push(String(e));
      break;
    }
  }
  return parts.join('\n');
}
