import { LaunchError, type Logger, type Redactor } from '@launch/core';
import { DecoratorHandler, fetch as undiciFetch, type Dispatcher } from 'undici';
import { retryRuleFor, statusSaysNotActed } from './policy.js';
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

/** The GraphQL document of a request body, to tell queries from mutations. */
function documentOf(body: unknown): string | undefined {
  if (typeof body !== 'string') return undefined;
  try {
    const parsed = JSON.parse(body) as { query?: unknown };
    return typeof parsed.query === 'string' ? parsed.query : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The error for a request that was written to a connection and got no usable answer: W&B may or
 * may not have carried it out. Code `wandb.outcome_unknown`; the client's read-backs catch it.
 */
export function outcomeUnknownError(operation: string, detail: string, cause?: unknown): LaunchError {
  return new LaunchError({
    code: 'wandb.outcome_unknown',
    message: `W&B API ${operation}: the request was sent but no usable answer came back (${detail}), so W&B may or may not have carried it out`,
    retryable: false,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * A dispatcher that records whether undici handed the request to a connection. undici calls a
 * handler's `onConnect` in `writeH1`/`writeH2` right before it writes the request line, and only
 * after the TCP connection and TLS handshake succeeded; every connect-phase failure (ECONNREFUSED,
 * ENOTFOUND, UND_ERR_CONNECT_TIMEOUT, a TLS certificate or protocol error, a reset during the
 * handshake) reaches `onError` without it. So `written === false` proves the server never saw a byte
 * of the request, whatever the error code says (ECONNRESET, for one, occurs in both phases).
 */
function trackingDispatcher(base: Dispatcher): { dispatcher: Dispatcher; written: () => boolean } {
  let written = false;
  // undici's typings do not declare DecoratorHandler's delegating methods; it has them all.
  const Decorator = DecoratorHandler as unknown as new (handler: Dispatcher.DispatchHandlers) => Dispatcher.DispatchHandlers & {
    onConnect(abort: (err?: Error) => void): void;
  };
  class Tracking extends Decorator {
    override onConnect(abort: (err?: Error) => void): void {
      written = true;
      super.onConnect(abort);
    }
  }
  const dispatcher = base.compose(
    (dispatch) => (opts, handler) => dispatch(opts, new Tracking(handler) as unknown as Dispatcher.DispatchHandlers),
  ) as unknown as Dispatcher;
  return { dispatcher, written: () => written };
}

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

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
 * A `fetch` for graphql-request that retries failed attempts by the operation's rule
 * (`OPERATION_POLICY` in policy.ts): queries and idempotent mutations on network errors, timeouts,
 * 408, 429 (waiting as long as `Retry-After` says) and 5xx; other mutations only when the request
 * was never written to a connection or the answer says the server did not act (408, 429, 503),
 * and otherwise it throws `wandb.outcome_unknown`. Backoff is exponential with jitter. Only the
 * request body (a string) is re-sent, so every attempt is identical. The answer's body is read
 * within the attempt, so a connection lost mid-answer counts as a failed attempt. Logs carry the
 * operation and status, never headers.
 */
export function createRetryingFetch(options: RetryingFetchOptions): typeof fetch {
  const { retry, logger, redactor } = options;
  const retryingFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const operation = operationNameOf(init.body);
    const rule = retryRuleFor(operation, documentOf(init.body));
    const name = operation ?? 'a request';
    for (let attempt = 1; ; attempt++) {
      const signals = [options.closed, AbortSignal.timeout(options.timeoutMs)];
      if (init.signal) signals.push(init.signal);
      const tracking = trackingDispatcher(options.dispatcher);
      let delayMs: number;
      try {
        const raw = await undiciFetch(input as string, {
          ...(init as Record<string, unknown>),
          signal: AbortSignal.any(signals),
          dispatcher: tracking.dispatcher,
        });
        const body = NULL_BODY_STATUSES.has(raw.status) ? null : await raw.arrayBuffer();
        const response = new Response(body, { status: raw.status, statusText: raw.statusText, headers: [...raw.headers] });
        if (!isRetryableStatus(response.status) || attempt >= retry.maxAttempts) {
          if (rule === 'unsent-only' && isRetryableStatus(response.status) && !statusSaysNotActed(response.status)) {
            throw outcomeUnknownError(name, `HTTP ${response.status}`);
          }
          return response;
        }
        if (rule === 'unsent-only' && !statusSaysNotActed(response.status)) {
          // A 500, 502 or 504 can come after the server acted (a gateway timing out on a slow backend).
          throw outcomeUnknownError(name, `HTTP ${response.status}`);
        }
        const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
        delayMs = retryAfter !== undefined ? Math.min(retryAfter, retry.maxRetryAfterMs) : backoffDelay(attempt, retry, options.random);
        logger.warn(
          { operation, attempt, status: response.status, delayMs, retryAfter: retryAfter !== undefined },
          `W&B API answered HTTP ${response.status} to ${name}; retrying in ${delayMs} ms`,
        );
      } catch (error) {
        if (LaunchError.isInstance(error)) throw error;
        if (options.closed.aborted || init.signal?.aborted) throw error;
        if (rule === 'unsent-only' && tracking.written()) {
          throw outcomeUnknownError(name, redactor.redact(describeFetchError(error)), error);
        }
        if (attempt >= retry.maxAttempts) throw error;
        delayMs = backoffDelay(attempt, retry, options.random);
        logger.warn(
          { operation, attempt, delayMs, error: redactor.redact(describeFetchError(error)), sent: tracking.written() },
          `W&B API unreachable during ${name}; retrying in ${delayMs} ms`,
        );
      }
      await sleep(delayMs, init.signal ? AbortSignal.any([options.closed, init.signal]) : options.closed);
    }
  };
  return retryingFetch as typeof fetch;
}
