import { LaunchError, type DiagnosisCategory, type Stage } from '@launch/core';

/** What we keep of an SDK error: its name, HTTP status, service error code and message, never its request or response. */
export interface AzureErrorInfo {
  name: string;
  status: number | undefined;
  /** The service's error code (`ContainerNotFound`, `AuthorizationPermissionMismatch`, …) or a network code (`ECONNREFUSED`). */
  code: string | undefined;
  message: string;
}

/** The HTTP status, error code and message of an Azure SDK (or fetch) error. */
export function azureErrorInfo(error: unknown): AzureErrorInfo {
  const e = (error ?? {}) as { name?: unknown; message?: unknown; code?: unknown; statusCode?: unknown; details?: { errorCode?: unknown } };
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const code = typeof e.details?.errorCode === 'string' ? e.details.errorCode : typeof e.code === 'string' ? e.code : undefined;
  return { name: typeof e.name === 'string' ? e.name : 'Error', status, code, message: typeof e.message === 'string' ? e.message : String(error) };
}

/**
 * Removes what could be a secret from a message: JWTs (AAD and ACR tokens), SAS signatures,
 * shared-key signatures and account keys (88 base64 characters), `client_secret=` values.
 */
export function redactAzureText(text: string): string {
  return text
    .replace(/\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, '[token]')
    .replace(/\b(sig|client_secret|access_token|refresh_token|password)=[^&\s"']+/gi, '$1=[redacted]')
    .replace(/SharedKey [^:\s]+:[A-Za-z0-9/+=]+/g, 'SharedKey [redacted]')
    .replace(/[A-Za-z0-9/+]{86}==/g, '[redacted]');
}

/**
 * A cause safe to attach to a LaunchError: SDK errors carry the request (headers with a signature or
 * a bearer token) and the response; we keep the name, status, code and a redacted message only.
 */
export function safeCause(error: unknown): Error {
  const info = azureErrorInfo(error);
  const firstLine = redactAzureText(info.message.split('\n')[0] ?? '').slice(0, 400);
  const cause = new Error(`${info.name}${info.status ? ` (HTTP ${info.status})` : ''}${info.code ? ` ${info.code}` : ''}: ${firstLine}`);
  cause.name = info.name;
  return cause;
}

/** Whether the request never got an HTTP answer (refused, reset, timed out, DNS). */
export function isNetworkError(error: unknown): boolean {
  const info = azureErrorInfo(error);
  if (info.status !== undefined) return false;
  if (info.code === 'REQUEST_SEND_ERROR') return true; // core-rest-pipeline's code for a request that got no answer
  return (info.code !== undefined && /^E[A-Z_]+$/.test(info.code)) || (info.name === 'RestError' && /ECONN|ENOTFOUND|ETIMEDOUT|socket/i.test(info.message));
}

export function isAbortError(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'AbortError';
}

/** Where `DefaultAzureCredential` looks, in its order (@azure/identity 4). */
export const DEFAULT_CHAIN =
  'environment variables (AZURE_TENANT_ID and AZURE_CLIENT_ID with AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or AZURE_USERNAME/AZURE_PASSWORD), ' +
  'workload identity (AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID, AZURE_TENANT_ID: AKS workload identity), ' +
  'managed identity (the instance metadata service, or AZURE_CLIENT_ID for a user-assigned identity), ' +
  'Azure CLI (az login), Azure PowerShell (Connect-AzAccount), Azure Developer CLI (azd auth login)';

/** Whether every credential of a chain (`AggregateAuthenticationError`) was unavailable: nothing configured. */
export function isNoCredentialsError(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'AggregateAuthenticationError') {
    const errors = (error as { errors?: unknown[] }).errors ?? [];
    return errors.every((e) => (e as { name?: unknown } | null)?.name === 'CredentialUnavailableError');
  }
  return false;
}

/** An abort from the caller's signal. */
export function cancelledError(code: string, what: string, stage: Stage): LaunchError {
  return new LaunchError({ code, stage, retryable: false, message: `${what}: cancelled` });
}

/** Maps a failure to get an AAD token into a LaunchError naming the chain (for the default credential). */
export function tokenError(
  options: { what: string; scope: string; chain: string; stage: Stage; category?: DiagnosisCategory; codePrefix?: string },
  error: unknown,
): LaunchError {
  if (LaunchError.isInstance(error)) return error;
  const prefix = options.codePrefix ?? 'azure';
  if (isAbortError(error)) return cancelledError(`${prefix}.cancelled`, options.what, options.stage);
  const cause = safeCause(error);
  if (isNoCredentialsError(error)) {
    return new LaunchError({
      code: 'azure.no_credentials',
      stage: options.stage,
      category: options.category,
      retryable: false,
      message: `${options.what}: no Azure credentials found; tried ${options.chain}`,
      hint: 'give the agent credentials through one of these, e.g. AKS workload identity (a service account annotated with azure.workload.identity/client-id and pods labelled azure.workload.identity/use=true) or AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET',
      cause,
    });
  }
  const info = azureErrorInfo(error);
  if (info.name === 'CredentialUnavailableError') {
    // One credential (not a chain) that could not be used: wrong tenant or authority, missing settings.
    return new LaunchError({
      code: 'azure.credential_unavailable',
      stage: options.stage,
      category: options.category,
      retryable: false,
      message: `${options.what}: ${options.chain} could not get an Azure AD token for ${options.scope}: ${cause.message}`,
      hint: 'check the tenant id, the authority host and the settings of that credential',
      cause,
    });
  }
  const network = isNetworkError(error);
  return new LaunchError({
    code: network ? 'azure.token_unavailable' : 'azure.token_rejected',
    stage: options.stage,
    category: options.category,
    retryable: network,
    message: `${options.what}: could not get an Azure AD token for ${options.scope} (${info.name}${info.status ? `, HTTP ${info.status}` : ''}); tried ${options.chain}`,
    hint: network
      ? 'check the network path to Azure AD (login.microsoftonline.com, or the authority host configured)'
      : 'check the tenant, client id and secret (or federated token) the agent uses; they are not shown here',
    cause,
  });
}
