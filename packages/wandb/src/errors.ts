import { LaunchError, type Redactor } from '@launch/core';
import { ClientError } from 'graphql-request';
import { describeFetchError } from './transport.js';

export interface ErrorContext {
  operation: string;
  baseUrl: string;
  /** Where the key came from, e.g. `WANDB_API_KEY` (never the key). */
  keyOrigin: string;
  redactor: Redactor;
}

function firstMessages(errors: ReadonlyArray<{ message?: unknown }> | undefined): string | undefined {
  const messages = (errors ?? []).map((e) => (typeof e.message === 'string' ? e.message : '')).filter(Boolean);
  return messages.length > 0 ? messages.slice(0, 3).join('; ') : undefined;
}

/**
 * Turns whatever a W&B call threw into a LaunchError naming the GraphQL operation: a rejected key,
 * an HTTP failure after retries, GraphQL errors, or an unreachable server. Texts pass the redactor.
 */
export function toWandbError(error: unknown, ctx: ErrorContext): LaunchError {
  if (LaunchError.isInstance(error)) return error;
  const r = (s: string) => ctx.redactor.redact(s);
  if (error instanceof ClientError) {
    const status = error.response.status;
    const detail = firstMessages(error.response.errors as Array<{ message?: unknown }> | undefined) ?? error.response.body?.slice(0, 200);
    if (status === 401 || status === 403) {
      return new LaunchError({
        code: 'wandb.unauthorized',
        message: r(`W&B at ${ctx.baseUrl} rejected the API key from ${ctx.keyOrigin} (HTTP ${status} on ${ctx.operation})`),
        hint: 'check the key (https://wandb.ai/authorize shows yours), or run `wandb login`; a key for another W&B server does not work here',
      });
    }
    if (status >= 300 || status === 0) {
      const retryable = status === 429 || status >= 500;
      return new LaunchError({
        code: 'wandb.http',
        message: r(`W&B API ${ctx.operation} failed with HTTP ${status}${retryable ? ' after retries' : ''}${detail ? `: ${detail}` : ''}`),
        retryable,
        ...(status === 404 ? { hint: `is ${ctx.baseUrl} the base URL of a W&B server? (the API lives at <baseUrl>/graphql)` } : {}),
      });
    }
    return new LaunchError({
      code: 'wandb.graphql',
      message: r(`W&B API ${ctx.operation} failed: ${detail ?? 'the server returned errors'}`),
    });
  }
  const aborted = error instanceof Error && error.name === 'AbortError';
  return new LaunchError({
    code: aborted ? 'wandb.aborted' : 'wandb.network',
    message: r(aborted ? `W&B API ${ctx.operation} was cancelled` : `cannot reach W&B at ${ctx.baseUrl} during ${ctx.operation}: ${describeFetchError(error)}`),
    retryable: !aborted,
    ...(aborted ? {} : { hint: 'check the base URL, the network and proxies; for a private CA set REQUESTS_CA_BUNDLE or NODE_EXTRA_CA_CERTS to its PEM file' }),
  });
}

/** A response that does not have the documented shape. */
export function badResponse(operation: string, detail: string): LaunchError {
  return new LaunchError({ code: 'wandb.bad_response', message: `W&B API ${operation} returned an unexpected answer: ${detail}` });
}
