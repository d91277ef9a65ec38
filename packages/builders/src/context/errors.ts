import { LaunchError, type DiagnosisCategory } from '@launch/core';

/** A LaunchError at stage `build` about the build context (bad paths, unreadable files, hostile trees). */
export function contextError(options: {
  code: string;
  message: string;
  hint?: string;
  retryable?: boolean;
  category?: DiagnosisCategory;
  cause?: unknown;
}): LaunchError {
  return new LaunchError({ category: 'BuildFailed', ...options, code: `build.${options.code}`, stage: 'build' });
}

/** The error a cancelled build or pack ends with. */
export function abortedError(what: string, cause?: unknown): LaunchError {
  return new LaunchError({
    code: 'build.aborted',
    stage: 'build',
    category: 'BuildFailed',
    retryable: true,
    message: `${what} was cancelled`,
    hint: 'the agent cancelled the build (stop request or shutdown); the item can be retried',
    cause,
  });
}

/** Throws the build's abort error when `signal` has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortedError(what, signal.reason);
}
