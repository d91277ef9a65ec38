import { LaunchError } from '@launch/core';

/** A registry refused or lacks credentials: category `RegistryAuth`, never retried. Messages name hosts and users, never secrets. */
export function registryAuthError(message: string, hint: string, cause?: unknown): LaunchError {
  return new LaunchError({ code: 'registry.auth', stage: 'build', category: 'RegistryAuth', retryable: false, message, hint, cause });
}

/** A registry that did not answer or answered 429/5xx: worth retrying later. */
export function registryUnavailableError(message: string, hint: string, cause?: unknown): LaunchError {
  return new LaunchError({ code: 'registry.unavailable', stage: 'build', retryable: true, message, hint, cause });
}

/** A registry answer that makes no sense (a status or body outside the protocol). */
export function registryProtocolError(message: string, hint: string, cause?: unknown): LaunchError {
  return new LaunchError({ code: 'registry.protocol', stage: 'build', retryable: false, message, hint, cause });
}
