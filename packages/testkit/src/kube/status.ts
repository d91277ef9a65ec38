import type { ResourceInfo } from './resources.js';

/** A `meta.k8s.io/v1 Status` body as kube-apiserver returns it on failure. */
export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    uid?: string;
    causes?: StatusCause[];
    retryAfterSeconds?: number;
  };
  code: number;
}

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

/** Thrown inside the server; the HTTP layer turns it into the Status response. */
export class ApiError extends Error {
  constructor(
    readonly body: StatusBody,
    readonly headers: Record<string, string> = {},
    /** Sent as `text/plain` instead of the Status (Go's `http.NotFound` for paths nothing is registered at). */
    readonly plainText?: string,
  ) {
    super(body.message);
  }
}

export function status(code: number, reason: string, message: string, details?: StatusBody['details']): StatusBody {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

/** `jobs.batch`, `pods`: how the apiserver names a resource in messages. */
export function qualifiedResource(r: Pick<ResourceInfo, 'plural' | 'group'>): string {
  return r.group ? `${r.plural}.${r.group}` : r.plural;
}

/** `Job.batch`, `Pod`: how validation messages name a kind. */
export function qualifiedKind(r: Pick<ResourceInfo, 'kind' | 'group'>): string {
  return r.group ? `${r.kind}.${r.group}` : r.kind;
}

export function notFound(r: ResourceInfo, name: string): ApiError {
  return new ApiError(status(404, 'NotFound', `${qualifiedResource(r)} "${name}" not found`, { name, group: r.group, kind: r.plural }));
}

/** A miss inside a group-version the server serves itself: go-restful's 404, turned into a Status. */
export function pathNotFound(): ApiError {
  return new ApiError(
    status(404, 'NotFound', 'the server could not find the requested resource', {
      causes: [{ reason: 'UnexpectedServerResponse', message: '404: Page Not Found' }],
    }),
  );
}

/** A path no handler is registered at (an API group that is not installed): plain-text `404 page not found`. */
export function plainNotFound(): ApiError {
  return new ApiError(status(404, 'NotFound', '404 page not found'), {}, '404 page not found\n');
}

export function alreadyExists(r: ResourceInfo, name: string): ApiError {
  return new ApiError(
    status(409, 'AlreadyExists', `${qualifiedResource(r)} "${name}" already exists`, {
      name,
      group: r.group,
      kind: r.plural,
    }),
  );
}

export function conflict(r: ResourceInfo, name: string): ApiError {
  return new ApiError(
    status(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${qualifiedResource(r)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      { name, group: r.group, kind: r.plural },
    ),
  );
}

export function invalid(r: ResourceInfo, name: string, causes: StatusCause[]): ApiError {
  const parts = causes.map((c) => `${c.field}: ${c.message}`);
  const joined = parts.length === 1 ? parts[0] : `[${parts.join(', ')}]`;
  return new ApiError(
    status(422, 'Invalid', `${qualifiedKind(r)} "${name}" is invalid: ${joined}`, {
      name,
      group: r.group,
      kind: r.kind,
      causes,
    }),
  );
}

export function badRequest(message: string): ApiError {
  return new ApiError(status(400, 'BadRequest', message));
}

export function methodNotAllowed(): ApiError {
  return new ApiError(status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
}

export function unsupportedMediaType(contentType: string): ApiError {
  return new ApiError(
    status(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got ${contentType})`,
    ),
  );
}

export function gone(message: string): ApiError {
  return new ApiError(status(410, 'Expired', message));
}

export function unauthorized(): ApiError {
  return new ApiError(status(401, 'Unauthorized', 'Unauthorized'));
}

/** The RBAC authorizer's wording, e.g. `jobs.batch is forbidden: User "u" cannot create resource "jobs" in API group "batch" in the namespace "ml"`. */
export function forbidden(
  user: string,
  verb: string,
  r: { plural: string; group: string; subresource?: string },
  namespace: string | undefined,
  name?: string,
): ApiError {
  const resource = r.subresource ? `${r.plural}/${r.subresource}` : r.plural;
  const subject = `${qualifiedResource(r)}${name ? ` "${name}"` : ''}`;
  const scope = namespace ? ` in the namespace "${namespace}"` : ' at the cluster scope';
  const message = `${subject} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "${r.group}"${scope}`;
  return new ApiError(status(403, 'Forbidden', message, { ...(name ? { name } : {}), group: r.group, kind: r.plural }));
}
