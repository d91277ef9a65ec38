import { LaunchError } from '@launch/core';

/** What an API call was trying to do, so a failure can name the missing permission. */
export interface ApiCall {
  verb: 'create' | 'get' | 'list' | 'watch' | 'delete' | 'update' | 'patch';
  /** `group/plural` as RBAC names it, e.g. `batch/jobs`, `core/secrets`, `core/pods/log`. */
  resource: string;
  namespace?: string;
  name?: string;
}

interface StatusLike {
  code?: number;
  reason?: string;
  message?: string;
}

/** HTTP status of a client-node error (ApiException `code`, watch errors `statusCode`). */
export function statusCode(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

/** The apiserver's `Status` body of a failed call, parsed when the client left it a string. */
export function statusBody(error: unknown): StatusLike | undefined {
  const body = (error as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as StatusLike;
    } catch {
      return { message: body.slice(0, 500) };
    }
  }
  return body && typeof body === 'object' ? (body as StatusLike) : undefined;
}

export const isNotFound = (e: unknown) => statusCode(e) === 404;
export const isConflict = (e: unknown) => statusCode(e) === 409;

/** 429, 5xx and connection failures may succeed on retry. */
export function isRetryable(error: unknown): boolean {
  const code = statusCode(error);
  if (code === undefined) return true;
  return code === 429 || code >= 500;
}

/**
 * Turns a Kubernetes API failure into a LaunchError (stage `run`) with a hint a user can act on:
 * a 403 names the verb, resource and namespace the service account lacks, a 404 asks whether the namespace
 * (or the CRD) exists, a 422 repeats the apiserver's field errors, quota refusals point at the quota.
 */
export function kubeError(error: unknown, call: ApiCall): LaunchError {
  if (LaunchError.isInstance(error)) return error;
  const code = statusCode(error);
  const body = statusBody(error);
  const detail: string = body?.message ?? (error instanceof Error ? (error.message.split('\n')[0] ?? error.message) : String(error));
  const where = call.namespace ? ` in namespace "${call.namespace}"` : ' cluster-wide';
  const what = `${call.verb} ${call.resource}${call.name ? ` "${call.name}"` : ''}${where}`;
  let hint: string | undefined;
  let category: 'PermissionDenied' | 'InvalidSpec' | undefined;
  if (code === 403 && /exceeded quota|quota/i.test(detail)) {
    hint = `a ResourceQuota in namespace "${call.namespace}" refuses the job: lower its requests or raise the quota`;
  } else if (code === 403) {
    category = 'PermissionDenied';
    hint = `the agent's service account lacks "${call.verb}" on "${call.resource}"${where}: grant it with a Role/RoleBinding`;
  } else if (code === 401) {
    category = 'PermissionDenied';
    hint = "the kube config's credentials were refused: check the token or client certificate";
  } else if (code === 404 && call.verb === 'create') {
    hint = `check that namespace "${call.namespace}" exists and that the API serving "${call.resource}" is installed (CRD)`;
  } else if (code === 422 || code === 400) {
    category = 'InvalidSpec';
    hint = 'the apiserver refused the manifest built from resource_args.kubernetes: fix the fields it names';
  }
  return new LaunchError({
    code: code === 403 || code === 401 ? 'run.kubernetes_forbidden' : 'run.kubernetes_api',
    stage: 'run',
    retryable: isRetryable(error),
    category,
    message: `Kubernetes API refused to ${what}${code ? ` (HTTP ${code})` : ''}: ${detail}`,
    hint,
    cause: error,
  });
}
