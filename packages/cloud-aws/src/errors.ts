import { LaunchError, type DiagnosisCategory, type Stage } from '@launch/core';

/** What we keep of an SDK error: its name, HTTP status and message, never its request or response. */
export interface AwsErrorInfo {
  name: string;
  status: number | undefined;
  message: string;
  /** A network-level code (`ECONNREFUSED`, `ETIMEDOUT`, …) when the request never got an answer. */
  networkCode: string | undefined;
}

/** The HTTP status, service error name and message of an SDK error. */
export function awsErrorInfo(error: unknown): AwsErrorInfo {
  const e = (error ?? {}) as { name?: unknown; message?: unknown; code?: unknown; $metadata?: { httpStatusCode?: unknown }; Code?: unknown };
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  const name = typeof e.name === 'string' ? e.name : typeof e.Code === 'string' ? e.Code : 'Error';
  const networkCode = typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code) ? e.code : undefined;
  return { name, status, message: typeof e.message === 'string' ? e.message : String(error), networkCode };
}

/**
 * A cause safe to attach to a LaunchError: SDK errors carry `$response` (headers, body) and the
 * request; we keep the name, status and message only, so no credential can ride along.
 */
export function safeCause(error: unknown): Error {
  const info = awsErrorInfo(error);
  const cause = new Error(`${info.name}${info.status ? ` (HTTP ${info.status})` : ''}: ${redactAwsText(info.message)}`);
  cause.name = info.name;
  return cause;
}

/** Removes anything shaped like an AWS access key id or a secret from a message. */
export function redactAwsText(text: string): string {
  return text.replace(/\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b/g, '[access key id]').replace(/\b[A-Za-z0-9/+=]{40}\b/g, '[redacted]');
}

/** Whether the SDK found no credentials anywhere in its chain. */
export function isNoCredentialsError(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return name === 'CredentialsProviderError' || (error instanceof Error && /Could not load credentials from any providers/i.test(error.message));
}

/** Whether the request never got an HTTP answer (refused, reset, timed out, DNS). */
export function isNetworkError(error: unknown): boolean {
  const info = awsErrorInfo(error);
  return info.status === undefined && (info.networkCode !== undefined || info.name === 'TimeoutError' || info.name === 'RequestTimeout');
}

/** Where the default credential chain looks, in its order (`fromNodeProviderChain`). */
export function credentialChainText(profile: string | undefined): string {
  return [
    'environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)',
    `SSO, shared credentials and config files (${profile ? `profile "${profile}"` : 'AWS_PROFILE or the default profile'}, AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE)`,
    'credential_process',
    'web identity token (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN: IRSA)',
    'container metadata (ECS, EKS Pod Identity)',
    'EC2 instance metadata (IMDS)',
  ].join(', ');
}

/** The LaunchError for "no credentials anywhere", naming the chain that was tried. */
export function noCredentialsError(
  options: { what: string; profile: string | undefined; stage: Stage; category?: DiagnosisCategory; code?: string },
  cause?: unknown,
): LaunchError {
  return new LaunchError({
    code: options.code ?? 'aws.no_credentials',
    stage: options.stage,
    category: options.category,
    retryable: false,
    message: `${options.what}: no AWS credentials found; the default credential chain tried ${credentialChainText(options.profile)}`,
    hint: 'give the agent credentials through one of these, e.g. IRSA (a service account annotated with eks.amazonaws.com/role-arn) on EKS, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY',
    cause: cause === undefined ? undefined : safeCause(cause),
  });
}

/** An abort from the caller's signal. */
export function cancelledError(code: string, what: string, stage: Stage): LaunchError {
  return new LaunchError({ code, stage, retryable: false, message: `${what}: cancelled` });
}

export function isAbortError(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return name === 'AbortError';
}
