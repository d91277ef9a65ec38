import type { Logger } from '@launch/core';
import type { Redactor } from '@launch/core';
import { fetch as undiciFetch, type Dispatcher } from 'undici';
import { backoffDelay, isRetryableStatus, parseRetryAfter, sleep, type ResolvedRetry } from './retry.js';

export interface RetryingFetchOptions {
  dispatcher: Dispatcher;
  retry: ResolvedRetry;
  /** Time limit of one HTTP attempt. */
  timeoutMs: number;
  logger: Logger;
  redactor: Redactor;
  /** Aborted when the client closes: in-flight retries stop at once. */
  closed: AbortSignal;
  random?: () => number;
}

/** The GraphQL operation a request body names, for logs and errors. */
export function operationNameOf(body: unknown): string | undefined {
  if (typeof body !== 'string') return undefined;
  try {
    const parsed = JSON.parse(body) as { operationName?: unknown; query?: unknown };
    if (typeof parsed.operationName === 'string') return parsed.operationName;
    if (typeof parsed.query === 'string') return /\b(?:query|mutation)\s+(\w+)/.exec(parsed.query)?.[1];
  } catch {
    return undefined;
  }
  return undefined;
}

/** A readable reason for a failed fetch: undici hides the useful part (ECONNREFUSED, a TLS error) in `cause`. */
export function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === 'TimeoutError') return 'the request timed out';
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code && !cause.message.includes(code) ? `${cause.message} (${code})` : cause.message;
  }
  return error.message;
}

/**
 * A `fetch` for graphql-request that retries network errors, timeouts, 429 (waiting as long as
 * `Retry-After` says) and 5xx with exponential backoff and jitter. Only the request body (a string)
 * is re-sent, so every attempt is identical. Logs carry the operation and status, never headers.
 */
export function createRetryingFetch(options: RetryingFetchOptions): typeof fetch {
  const { retry, logger, redactor } = options;
  const retryingFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const operation = operationNameOf(init.body);
    for (let attempt = 1; ; attempt++) {
      const signals = [options.closed, AbortSignal.timeout(options.timeoutMs)];
      if (init.signal) signals.push(init.signal);
      let delayMs: number;
      try {
        const response = (await undiciFetch(input as string, {
          ...(init as Record<string, unknown>),
          signal: AbortSignal.any(signals),
          dispatcher: options.dispatcher,
        })) as unknown as Response;
        if (!isRetryableStatus(response.status) || attempt >= retry.maxAttempts) return response;
        const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
        delayMs = retryAfter !== undefined ? Math.min(retryAfter, retry.maxRetryAfterMs) : backoffDelay(attempt, retry, options.random);
        await response.arrayBuffer().catch(() => undefined);
        logger.warn(
          { operation, attempt, status: response.status, delayMs, retryAfter: retryAfter !== undefined },
          `W&B API answered HTTP ${response.status} to ${operation ?? 'a request'}; retrying in ${delayMs} ms`,
        );
      } catch (error) {
        if (options.closed.aborted || init.signal?.aborted || attempt >= retry.maxAttempts) throw error;
        delayMs = backoffDelay(attempt, retry, options.random);
        logger.warn(
          { operation, attempt, delayMs, error: redactor.redact(describeFetchError(error)) },
          `W&B API unreachable during ${operation ?? 'a request'}; retrying in ${delayMs} ms`,
        );
      }
      await sleep(delayMs, init.signal ? AbortSignal.any([options.closed, init.signal]) : options.closed);
    }
  };
  return retryingFetch as typeof fetch;
}
