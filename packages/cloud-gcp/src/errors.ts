import { LaunchError, type Stage } from '@launch/core';

/** What we keep of a Google client error: HTTP status, reason and message, never the request or response. */
export interface GcpErrorInfo {
  status: number | undefined;
  /** Google's error reason (`notFound`, `forbidden`, …) or the OAuth `error` (`invalid_grant`). */
  reason: string | undefined;
  message: string;
  /** A network-level code (`ECONNREFUSED`, …) when the request never got an answer. */
  networkCode: string | undefined;
}

/** The HTTP status, reason and message of a gaxios / ApiError / OAuth error. */
export function gcpErrorInfo(error: unknown): GcpErrorInfo {
  const e = (error ?? {}) as {
    code?: unknown;
    status?: unknown;
    message?: unknown;
    errors?: Array<{ reason?: unknown }>;
    response?: { status?: unknown; data?: unknown };
  };
  const status =
    typeof e.code === 'number' ? e.code : typeof e.status === 'number' ? e.status : typeof e.response?.status === 'number' ? e.response.status : undefined;
  const data = e.response?.data as { error?: unknown } | undefined;
  const reason = typeof e.errors?.[0]?.reason === 'string' ? e.errors[0].reason : typeof data?.error === 'string' ? data.error : undefined;
  const networkCode = typeof e.code === 'string' && /^E[A-Z_]+$/.test(e.code) ? e.code : undefined;
  return { status, reason, message: typeof e.message === 'string' ? e.message : String(error), networkCode };
}

/** Removes anything shaped like an OAuth access token, a JWT or a PEM key from a message. */
export function redactGcpText(text: string): string {
  return text
    .replace(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g, '[private key]')
    .replace(/\bya29\.[\w.-]+/g, '[access token]')
    .replace(/\beyJ[\w-]+\.[\w-]+\.[\w-]*/g, '[jwt]')
    .replace(/(Bearer\s+)\S+/gi, '$1[redacted]');
}

/** A cause safe to attach to a LaunchError: status, reason and a redacted message only. */
export function safeCause(error: unknown): Error {
  const info = gcpErrorInfo(error);
  const cause = new Error(`${info.reason ?? 'error'}${info.status ? ` (HTTP ${info.status})` : ''}: ${redactGcpText(info.message).slice(0, 500)}`);
  cause.name = 'GoogleCloudError';
  return cause;
}

/** Whether the request never got an HTTP answer (refused, reset, timed out, DNS). */
export function isNetworkError(error: unknown): boolean {
  const info = gcpErrorInfo(error);
  return info.status === undefined && info.networkCode !== undefined;
}

/** Whether the caller's signal aborted the call. */
export function isAbortError(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return name === 'AbortError';
}

/** An abort from the caller's signal. */
export function cancelledError(code: string, what: string, stage: Stage): LaunchError {
  return new LaunchError({ code, stage, retryable: false, message: `${what}: cancelled` });
}

/** Where Application Default Credentials look, in their order. */
export const ADC_CHAIN_TEXT =
  "GOOGLE_APPLICATION_CREDENTIALS (a service-account key or a workload-identity-federation config file), gcloud's application_default_credentials.json, and the GCE / GKE metadata server (workload identity)";
