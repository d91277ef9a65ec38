import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { createApi, type Api, type DeleteOptions, type WriteOptions } from './api.js';
import { managerFromUserAgent } from './managed-fields.js';
import { startGarbageCollector } from './gc.js';
import { startJobController } from './job-controller.js';
import { startCustomControllers } from './custom-controllers.js';
import { kubeconfigYaml, writeKubeconfig } from './kubeconfig.js';
import { createKubelet, type KubeletDefaults, type ScriptedKubelet } from './kubelet.js';
import { mergePatch } from './patch.js';
import { servePodLog } from './pod-log.js';
import { createRbacAuthorizer, requestInfo, serviceAccountUser, type UserInfo } from './rbac.js';
import { selfSignedCertificate, type ServingCertificate } from './tls.js';
import {
  apiVersionOf,
  createResourceRegistry,
  DEFAULT_CUSTOM_RESOURCES,
  isBuiltinGroup,
  type CustomResourceDefinition,
  type ResourceInfo,
  type ResourceRegistry,
} from './resources.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import {
  ApiError,
  badRequest,
  forbidden,
  methodNotAllowed,
  pathNotFound,
  plainNotFound,
  status,
  unauthorized,
  type StatusBody,
  type StatusCause,
} from './status.js';
import { createStore } from './store.js';
import { clone, type Json, type KubeObject } from './types.js';
import { serveWatch, type WatchStream } from './watch.js';

export interface KubeTestServerOptions {
  /** Namespaces that exist from the start (default `['default']`). */
  namespaces?: string[];
  /** Validate created/replaced objects against the Kubernetes schemas (kubernetes-models); default true. */
  validate?: boolean;
  kubelet?: Partial<KubeletDefaults>;
  /**
   * Multiplies every duration Kubernetes expresses in seconds (ttlSecondsAfterFinished, activeDeadlineSeconds,
   * `sleep N` in default scripts), so tests can run a 60 s TTL in 60 ms with `timeScale: 0.001`. Default 1.
   */
  timeScale?: number;
  /** The user the kubeconfig's token authenticates as (named in RBAC messages). */
  user?: string;
  /** CRDs to serve besides the default ones (Volcano, Kubeflow, JobSet, Ray). More can be installed later with `installCrd`. */
  customResources?: CustomResourceDefinition[];
  /**
   * Install the default CRDs: Volcano `jobs.batch.volcano.sh`, Kubeflow `pytorchjobs`/`tfjobs`/`mpijobs`, JobSet
   * `jobsets`, Ray `rayjobs` (default true). false gives a cluster with none of them: their paths answer 404.
   */
  defaultCustomResources?: boolean;
  /**
   * Serve any other API group as a CRD made up from the path (default false: a group that is not installed answers a
   * plain-text `404 page not found`, as kube-apiserver does).
   */
  allowUnknownCustomResources?: boolean;
  /** Changes kept for watch resumption before the oldest are compacted away (default 100000). */
  historyLimit?: number;
  /** Interval of BOOKMARK events for watches with allowWatchBookmarks (default 60000, as the real server's ~1 min). */
  bookmarkIntervalMs?: number;
  /**
   * `'RBAC'` authorizes every request as kube-apiserver's `--authorization-mode=RBAC` does, against the Roles,
   * ClusterRoles and bindings stored in the server: a request no bound rule allows is a 403 Forbidden Status. The
   * kubeconfig's token is a cluster admin (`system:masters`) either way; tokens from `serviceAccountToken()` are
   * not. Default `'AlwaysAllow'`: every authenticated request is allowed.
   */
  authorization?: 'AlwaysAllow' | 'RBAC';
  /**
   * Serve HTTPS: `true` with a self-signed certificate for 127.0.0.1 made by `openssl`, or the given one. The
   * kubeconfig then trusts that certificate (`certificate-authority-data`) instead of skipping verification, and
   * `caCert` holds it for an in-cluster `ca.crt`. Default plain HTTP.
   */
  tls?: boolean | ServingCertificate;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  watch: boolean;
  at: number;
  user?: string;
}

export interface InjectedFault {
  method?: string;
  /** A string matches the request path exactly or as a prefix; a RegExp is tested against the path. */
  path?: string | RegExp;
  status: number;
  message?: string;
  reason?: string;
  /** How many requests fail (default: every matching request until `clearFaults()`). */
  times?: number;
  /** Only watch requests (true) or only non-watch requests (false). */
  watch?: boolean;
}

export interface KubeTestServer {
  readonly url: string;
  readonly kubeconfigPath: string;
  readonly kubeconfigYaml: string;
  /** The bearer token the kubeconfig carries. */
  readonly token: string;
  /** The serving certificate (PEM) when the server speaks TLS: what a pod's `ca.crt` holds. */
  readonly caCert: string | undefined;
  /**
   * A token for a ServiceAccount that exists in the server, as the TokenRequest API issues one for a pod: requests
   * bearing it authenticate as `system:serviceaccount:<namespace>:<name>` (groups `system:serviceaccounts`,
   * `system:serviceaccounts:<namespace>`, `system:authenticated`) and, under `authorization: 'RBAC'`, get only what
   * that account's bindings grant. Throws when the ServiceAccount does not exist.
   */
  serviceAccountToken(namespace: string, name: string): string;
  /** Every request, in arrival order (status filled when the response is sent). */
  readonly requests: RecordedRequest[];
  readonly kubelet: ScriptedKubelet;
  /** Currently open watch streams. */
  openWatches(): number;
  injectFault(fault: InjectedFault): void;
  clearFaults(): void;
  /** Abruptly end every open watch stream (the client must reconnect). */
  breakWatches(): void;
  /** Forget history: a watch or exact/paged list from an older resourceVersion gets 410 Gone. */
  compact(): void;
  /** A copy of the object at an API path, e.g. `/apis/batch/v1/namespaces/default/jobs/foo`, or undefined. */
  getObject(apiPath: string): unknown;
  /** Copies of the objects in a collection path, e.g. `/api/v1/namespaces/default/pods`. */
  listObjects(collectionPath: string): unknown[];
  /** Merge-patch the status of the object at an API path (as a controller would); returns the new object. */
  patchStatus(apiPath: string, statusPatch: unknown): unknown;
  /** The current global resourceVersion. */
  resourceVersion(): string;
  /**
   * Install a CRD while the server runs (as `kubectl apply` of a CRD would): its group appears in discovery and its
   * paths are served from now on. Installing one that is already served changes nothing.
   */
  installCrd(definition: CustomResourceDefinition): void;
  close(): Promise<void>;
}

interface ResourceRoute {
  kind: 'resource';
  resource: ResourceInfo;
  namespace?: string;
  name?: string;
  subresource?: string;
  watchPath: boolean;
}
type Route = ResourceRoute | { kind: 'json'; body: Json } | { kind: 'text'; body: string };

/** Every resource served answers every verb. */
const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function resourceList(registry: ResourceRegistry, group: string, version: string): Json {
  const resources: Json[] = [];
  for (const r of registry.all()) {
    if (r.group !== group || r.version !== version) continue;
    resources.push({ name: r.plural, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: [...VERBS] });
    if (r.statusSubresource) {
      resources.push({ name: `${r.plural}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'] });
    }
    if (r.plural === 'pods' && r.group === '') {
      resources.push({ name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] });
      resources.push({ name: 'pods/eviction', singularName: '', namespaced: true, group: 'policy', version: 'v1', kind: 'Eviction', verbs: ['create'] });
    }
  }
  if (resources.length === 0) throw isBuiltinGroup(group) && registry.serves(group) ? pathNotFound() : plainNotFound();
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
}

function groupList(registry: ResourceRegistry): Json {
  const groups = new Map<string, Set<string>>();
  for (const r of registry.all()) {
    if (!r.group) continue;
    if (!groups.has(r.group)) groups.set(r.group, new Set());
    groups.get(r.group)!.add(r.version);
  }
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: [...groups].map(([name, versions]) => {
      const list = [...versions].map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
      return { name, versions: list, preferredVersion: list[0] };
    }),
  };
}

function parseRoute(registry: ResourceRegistry, pathname: string): Route {
  const segments = pathname
    .split('/')
    .filter((s) => s !== '')
    .map(decodeURIComponent);
  if (pathname === '/version') {
    return { kind: 'json', body: { major: '1', minor: '31', gitVersion: 'v1.31.0', platform: 'linux/amd64', goVersion: 'go1.22.5' } };
  }
  if (['/healthz', '/readyz', '/livez'].includes(pathname)) return { kind: 'text', body: 'ok' };
  if (segments[0] === 'api') {
    if (segments.length === 1) {
      return { kind: 'json', body: { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] } };
    }
    if (segments[1] !== 'v1') throw pathNotFound();
    if (segments.length === 2) return { kind: 'json', body: resourceList(registry, '', 'v1') };
    return resourceRoute(registry, '', 'v1', segments.slice(2));
  }
  if (segments[0] === 'apis') {
    if (segments.length === 1) return { kind: 'json', body: groupList(registry) };
    const group = segments[1]!;
    if (segments.length === 2) {
      const g = (groupList(registry).groups as Json[]).find((x) => x.name === group);
      if (!g) throw plainNotFound();
      return { kind: 'json', body: { kind: 'APIGroup', apiVersion: 'v1', ...g } };
    }
    const version = segments[2]!;
    if (segments.length === 3) return { kind: 'json', body: resourceList(registry, group, version) };
    return resourceRoute(registry, group, version, segments.slice(3));
  }
  // Nothing is registered at any other path: Go's http.NotFound.
  throw plainNotFound();
}

function resourceRoute(registry: ResourceRegistry, group: string, version: string, rest: string[]): ResourceRoute {
  let watchPath = false;
  if (rest[0] === 'watch') {
    watchPath = true;
    rest = rest.slice(1);
  }
  const namespaces = registry.lookup('', 'v1', 'namespaces');
  if (rest[0] === 'namespaces' && group === '' && rest.length <= 3 && (rest.length < 3 || rest[2] === 'status' || rest[2] === 'finalize')) {
    return { kind: 'resource', resource: namespaces, ...(rest[1] ? { name: rest[1] } : {}), ...(rest[2] ? { subresource: rest[2] } : {}), watchPath };
  }
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const [, namespace, plural, name, subresource, ...extra] = rest;
    if (extra.length) throw pathNotFound();
    const resource = registry.lookup(group, version, plural!);
    if (!resource.namespaced) throw pathNotFound();
    return { kind: 'resource', resource, namespace, ...(name ? { name } : {}), ...(subresource ? { subresource } : {}), watchPath };
  }
  const [plural, name, subresource, ...extra] = rest;
  if (!plural || extra.length) throw pathNotFound();
  const resource = registry.lookup(group, version, plural);
  if (resource.namespaced && name) throw pathNotFound();
  return { kind: 'resource', resource, ...(name ? { name } : {}), ...(subresource ? { subresource } : {}), watchPath };
}

function rbacVerb(method: string, route: ResourceRoute, watch: boolean): string {
  switch (method) {
    case 'GET':
      return watch ? 'watch' : route.name ? 'get' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return route.name ? 'delete' : 'deletecollection';
    default:
      return method.toLowerCase();
  }
}

const DEFAULT_REASONS: Record<number, [string, string]> = {
  400: ['BadRequest', 'bad request'],
  401: ['Unauthorized', 'Unauthorized'],
  404: ['NotFound', 'the server could not find the requested resource'],
  409: ['Conflict', 'the object has been modified; please apply your changes to the latest version and try again'],
  410: ['Expired', 'too old resource version'],
  422: ['Invalid', 'the object is invalid'],
  429: ['TooManyRequests', 'Too many requests, please try again later.'],
  500: ['InternalError', 'Internal error occurred: injected fault'],
  503: ['ServiceUnavailable', 'the server is currently unable to handle the request'],
  504: ['Timeout', 'the server was unable to return a response in the time allotted, but may still be processing the request'],
};

function faultError(fault: InjectedFault, route: ResourceRoute | undefined, method: string, watch: boolean, user: string): ApiError {
  if (fault.status === 403 && !fault.message && route) {
    return forbidden(
      user,
      rbacVerb(method, route, watch),
      { plural: route.resource.plural, group: route.resource.group, ...(route.subresource ? { subresource: route.subresource } : {}) },
      route.resource.namespaced ? route.namespace : undefined,
      route.name,
    );
  }
  const [reason, message] = DEFAULT_REASONS[fault.status] ?? ['Unknown', `injected fault ${fault.status}`];
  const body: StatusBody = status(fault.status, fault.reason ?? (fault.status === 403 ? 'Forbidden' : reason), fault.message ?? message);
  if (fault.status === 429) {
    body.details = { retryAfterSeconds: 1 };
    return new ApiError(body, { 'Retry-After': '1' });
  }
  return new ApiError(body);
}

async function readBody(req: IncomingMessage): Promise<Json> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw badRequest(`couldn't get version/kind; json parse error: ${(error as Error).message}`);
  }
}

function sendJson(res: ServerResponse, code: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** A list body as the apiserver serializes it: built-in items carry no apiVersion/kind, custom ones do. */
function listBody(r: ResourceInfo, items: KubeObject[], meta: { resourceVersion: string; continue?: string; remainingItemCount?: number }): Json {
  return {
    kind: `${r.kind}List`,
    apiVersion: apiVersionOf(r),
    metadata: meta,
    items: r.custom ? items : items.map(({ apiVersion: _a, kind: _k, ...rest }) => rest),
  };
}

/** `Warning` header values as kube-apiserver writes them: `299 - "text"`, quotes and backslashes escaped. */
function warningHeaders(warnings: string[]): Record<string, string[]> {
  if (warnings.length === 0) return {};
  return { Warning: [...new Set(warnings)].map((w) => `299 - "${w.replace(/[\\"]/g, (c) => `\\${c}`)}"`) };
}

const FIELD_VALIDATION = ['', 'Ignore', 'Strict', 'Warn'];

/**
 * The write options a create/update/patch request carries in its query, checked as ValidateCreateOptions (and the
 * update and patch variants) check them: a bad value is a 422 naming `CreateOptions.meta.k8s.io`.
 */
function writeOptionsFrom(
  method: string,
  query: Record<string, string>,
  userAgent: string | undefined,
): Pick<WriteOptions, 'fieldManager' | 'fieldValidation'> {
  const causes: StatusCause[] = [];
  const manager = query.fieldManager ?? '';
  if (Buffer.byteLength(manager) > 128) {
    causes.push({ reason: 'FieldValueTooLong', message: 'Too long: must have at most 128 bytes', field: 'fieldManager' });
  }
  [...manager].forEach((ch, i) => {
    if (!/^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(ch)) {
      const code = ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
      causes.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${JSON.stringify(manager)}: invalid character U+${code} (at position ${i})`,
        field: 'fieldManager',
      });
    }
  });
  const validation = query.fieldValidation ?? '';
  if (!FIELD_VALIDATION.includes(validation)) {
    causes.push({
      reason: 'FieldValueNotSupported',
      message: `Unsupported value: ${JSON.stringify(validation)}: supported values: ${FIELD_VALIDATION.map((v) => JSON.stringify(v)).join(', ')}`,
      field: 'fieldValidation',
    });
  }
  if (causes.length) {
    const kind = method === 'POST' ? 'CreateOptions' : method === 'PUT' ? 'UpdateOptions' : 'PatchOptions';
    const parts = causes.map((c) => `${c.field}: ${c.message}`);
    const joined = parts.length === 1 ? parts[0] : `[${parts.join(', ')}]`;
    throw new ApiError(status(422, 'Invalid', `${kind}.meta.k8s.io "" is invalid: ${joined}`, { group: 'meta.k8s.io', kind, causes }));
  }
  return {
    fieldManager: manager || managerFromUserAgent(userAgent),
    // No parameter means Warn since Kubernetes 1.27 (ServerSideFieldValidation GA).
    fieldValidation: (validation || 'Warn') as 'Strict' | 'Warn' | 'Ignore',
  };
}

function queryFlag(value: string | undefined): boolean {
  return value === 'true' || value === '1';
}

/**
 * Starts the Kubernetes test server: kube-apiserver's REST and watch protocol for the resources Launch uses, with a
 * job controller, garbage collector and scripted kubelet behind it. Listens on 127.0.0.1 on a free port.
 */
export async function startKubeTestServer(options: KubeTestServerOptions = {}): Promise<KubeTestServer> {
  const token = randomBytes(16).toString('hex');
  const user = options.user ?? 'system:serviceaccount:default:launch-agent';
  // Bearer tokens and who they identify: the kubeconfig's token is the cluster admin.
  const users = new Map<string, UserInfo>([[token, { name: user, groups: ['system:masters', 'system:authenticated'] }]]);
  const registry = createResourceRegistry(
    [...(options.defaultCustomResources === false ? [] : DEFAULT_CUSTOM_RESOURCES), ...(options.customResources ?? [])],
    options.allowUnknownCustomResources ?? false,
  );
  const store = createStore(options.historyLimit ?? 100_000);
  const namespacesResource = registry.lookup('', 'v1', 'namespaces');
  const podsResource = registry.lookup('', 'v1', 'pods');
  const jobsResource = registry.lookup('batch', 'v1', 'jobs');
  const api: Api = createApi({ store, registry, validate: options.validate ?? true, namespacesResource });
  const timeScale = options.timeScale ?? 1;
  const stepDelayMs = options.kubelet?.stepDelayMs ?? 20;
  const bookmarkIntervalMs = options.bookmarkIntervalMs ?? 60_000;

  for (const ns of options.namespaces ?? ['default']) {
    api.create(namespacesResource, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  }

  const pending = new Set<NodeJS.Immediate>();
  const defer = (fn: () => void) => {
    const handle = setImmediate(() => {
      pending.delete(handle);
      fn();
    });
    pending.add(handle);
  };
  const stopGc = startGarbageCollector(api, defer);
  const kubelet = createKubelet({ api, pods: podsResource, stepDelayMs, timeScale });
  const stopJobs = startJobController({ api, jobs: jobsResource, pods: podsResource, timeScale });
  const stopCustom = startCustomControllers({ api, pods: podsResource, jobs: jobsResource, stepDelayMs });

  const rbac = options.authorization === 'RBAC' ? createRbacAuthorizer(store, registry) : undefined;
  const serviceAccounts = registry.lookup('', 'v1', 'serviceaccounts');
  const requests: RecordedRequest[] = [];
  const faults: Array<InjectedFault & { remaining: number }> = [];
  const watches = new Set<WatchStream>();
  const sockets = new Set<Socket>();

  const handleResource = async (req: IncomingMessage, res: ServerResponse, route: ResourceRoute, query: Record<string, string>, watch: boolean) => {
    const { resource: r, namespace, name, subresource } = route;
    const method = req.method ?? 'GET';
    const dryRun = query.dryRun === 'All';
    if (watch) {
      if (method !== 'GET' || name) throw methodNotAllowed();
      parseLabelSelector(query.labelSelector);
      parseFieldSelector(query.fieldSelector, r.plural);
      const stream = serveWatch(
        store,
        {
          resource: r,
          namespace,
          ...(query.labelSelector !== undefined ? { labelSelector: query.labelSelector } : {}),
          ...(query.fieldSelector !== undefined ? { fieldSelector: query.fieldSelector } : {}),
          ...(query.resourceVersion !== undefined ? { resourceVersion: query.resourceVersion } : {}),
          // Without timeoutSeconds the real server picks 30–60 min; streams end at close() here anyway.
          timeoutSeconds: query.timeoutSeconds !== undefined ? Number(query.timeoutSeconds) : 1800,
          allowWatchBookmarks: queryFlag(query.allowWatchBookmarks),
          bookmarkIntervalMs,
        },
        res,
        () => watches.delete(stream),
      );
      watches.add(stream);
      if (res.writableEnded) watches.delete(stream);
      return;
    }
    if (subresource === 'log') {
      if (r !== podsResource || !name || method !== 'GET') throw pathNotFound();
      const pod = api.get(r, namespace, name);
      servePodLog(kubelet, pod, query, res);
      return;
    }
    if (subresource === 'eviction') {
      if (r !== podsResource || !name || method !== 'POST') throw pathNotFound();
      await readBody(req);
      const pod = api.get(r, namespace, name);
      kubelet.evict(pod);
      sendJson(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
      return;
    }
    if (subresource !== undefined && subresource !== 'status') throw pathNotFound();
    if (subresource === 'status' && !name) throw pathNotFound();
    const warnings: string[] = [];
    const writeOptions: WriteOptions = {
      dryRun,
      ...(subresource === 'status' ? { subresource: 'status' as const } : {}),
      ...(['POST', 'PUT', 'PATCH'].includes(method) ? writeOptionsFrom(method, query, req.headers['user-agent']) : {}),
      warnings,
    };
    switch (method) {
      case 'GET': {
        if (name) return sendJson(res, 200, api.get(r, namespace, name));
        const result = api.list(r, namespace, query);
        const meta = {
          resourceVersion: result.resourceVersion,
          ...(result.continue ? { continue: result.continue, remainingItemCount: result.remainingItemCount } : {}),
        };
        return sendJson(res, 200, listBody(r, result.items, meta));
      }
      case 'POST': {
        if (name) throw methodNotAllowed();
        const created = api.create(r, namespace, await readBody(req), writeOptions);
        return sendJson(res, 201, created, warningHeaders(warnings));
      }
      case 'PUT': {
        if (!name) throw methodNotAllowed();
        const replaced = api.replace(r, namespace, name, await readBody(req), writeOptions);
        return sendJson(res, 200, replaced, warningHeaders(warnings));
      }
      case 'PATCH': {
        if (!name) throw methodNotAllowed();
        const body = await readBody(req);
        const patched = api.patch(r, namespace, name, req.headers['content-type'] ?? '', body, writeOptions);
        return sendJson(res, 200, patched, warningHeaders(warnings));
      }
      case 'DELETE': {
        const body = (await readBody(req)) as DeleteOptions | undefined;
        const deleteOptions: DeleteOptions = {
          ...(body ?? {}),
          ...(query.propagationPolicy ? { propagationPolicy: query.propagationPolicy } : {}),
          ...(query.gracePeriodSeconds !== undefined ? { gracePeriodSeconds: Number(query.gracePeriodSeconds) } : {}),
          ...(query.orphanDependents !== undefined ? { orphanDependents: query.orphanDependents === 'true' } : {}),
          dryRun,
        };
        if (name) {
          const result = api.delete(r, namespace, name, deleteOptions);
          return sendJson(res, result.code, result.body);
        }
        const { items } = api.list(r, namespace, query);
        for (const item of items) api.delete(r, item.metadata.namespace, item.metadata.name!, deleteOptions);
        return sendJson(res, 200, listBody(r, items, { resourceVersion: String(store.revision()) }));
      }
      default:
        throw methodNotAllowed();
    }
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const method = (req.method ?? 'GET').toUpperCase();
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const caller = bearer === undefined ? undefined : users.get(bearer);
    const authorized = caller !== undefined;
    let watch = method === 'GET' && queryFlag(query.watch);
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      query,
      status: 0,
      watch,
      at: Date.now(),
      ...(caller ? { user: caller.name } : {}),
    };
    requests.push(record);
    const originalWriteHead = res.writeHead.bind(res);
    res.writeHead = ((code: number, ...rest: unknown[]) => {
      record.status = code;
      return (originalWriteHead as (...a: unknown[]) => ServerResponse)(code, ...rest);
    }) as typeof res.writeHead;

    const run = async () => {
      if (!authorized) throw unauthorized();
      // Authorization comes before routing, from the path alone, as in kube-apiserver's filter chain.
      if (rbac) {
        const info = requestInfo(method, url.pathname, query);
        if (!rbac.allows(caller, info)) {
          if (!info) throw new ApiError(status(403, 'Forbidden', `forbidden: User "${caller.name}" cannot ${method.toLowerCase()} path "${url.pathname}"`));
          const { verb, apiGroup, resource, subresource, namespace, name } = info;
          throw forbidden(caller.name, verb, { plural: resource, group: apiGroup, ...(subresource ? { subresource } : {}) }, namespace, name);
        }
      }
      const route = parseRoute(registry, url.pathname);
      if (route.kind === 'resource' && route.watchPath) {
        watch = method === 'GET';
        record.watch = watch;
      }
      const fault = faults.find(
        (f) =>
          f.remaining > 0 &&
          (f.method === undefined || f.method.toUpperCase() === method) &&
          (f.watch === undefined || f.watch === watch) &&
          (f.path === undefined || (typeof f.path === 'string' ? url.pathname === f.path || url.pathname.startsWith(f.path) : f.path.test(url.pathname))),
      );
      if (fault) {
        fault.remaining -= 1;
        if (fault.remaining <= 0) faults.splice(faults.indexOf(fault), 1);
        throw faultError(fault, route.kind === 'resource' ? route : undefined, method, watch, user);
      }
      if (route.kind === 'json') return sendJson(res, 200, route.body);
      if (route.kind === 'text') {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        return void res.end(route.body);
      }
      await handleResource(req, res, route, query, watch);
    };
    run().catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (error instanceof ApiError && error.plainText !== undefined) {
        res.writeHead(error.body.code, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
        return void res.end(error.plainText);
      }
      if (error instanceof ApiError) return sendJson(res, error.body.code, error.body, error.headers);
      sendJson(res, 500, status(500, 'InternalError', `Internal error occurred: ${(error as Error).message}`));
    });
  };
  const certificate = options.tls === true ? selfSignedCertificate() : options.tls || undefined;
  const server = certificate ? createHttpsServer({ cert: certificate.cert, key: certificate.key }, handler) : createServer(handler);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `${certificate ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const yaml = kubeconfigYaml(url, token, 'default', certificate?.cert);
  const kubeconfig = await writeKubeconfig(yaml);

  const resolvePath = (apiPath: string): ResourceRoute => {
    const route = parseRoute(registry, apiPath);
    if (route.kind !== 'resource') throw new Error(`${apiPath} is not a resource path`);
    return route;
  };

  return {
    url,
    kubeconfigPath: kubeconfig.path,
    kubeconfigYaml: yaml,
    token,
    caCert: certificate?.cert,
    serviceAccountToken(namespace, name) {
      if (!store.get(serviceAccounts, namespace, name)) throw new Error(`serviceAccountToken: no ServiceAccount ${namespace}/${name} in the server`);
      const issued = randomBytes(24).toString('base64url');
      users.set(issued, serviceAccountUser(namespace, name));
      return issued;
    },
    requests,
    kubelet,
    openWatches: () => watches.size,
    injectFault(fault) {
      faults.push({ ...fault, remaining: fault.times ?? Number.POSITIVE_INFINITY });
    },
    clearFaults() {
      faults.length = 0;
    },
    breakWatches() {
      for (const w of [...watches]) w.destroy();
      watches.clear();
    },
    compact: () => store.compact(),
    getObject(apiPath) {
      const route = resolvePath(apiPath);
      if (!route.name) throw new Error(`${apiPath} names no object`);
      const obj = store.get(route.resource, route.namespace, route.name);
      return obj ? clone(obj) : undefined;
    },
    listObjects(collectionPath) {
      const route = resolvePath(collectionPath);
      return store.list(route.resource, route.namespace).map(clone);
    },
    patchStatus(apiPath, statusPatch) {
      const route = resolvePath(apiPath);
      if (!route.name) throw new Error(`${apiPath} names no object`);
      const obj = store.get(route.resource, route.namespace, route.name);
      if (!obj) throw new Error(`${apiPath} not found`);
      return clone(api.writeStatus(route.resource, obj, mergePatch(obj.status ?? {}, statusPatch)));
    },
    resourceVersion: () => String(store.revision()),
    installCrd(definition) {
      for (const key of ['group', 'version', 'plural', 'kind'] as const) {
        if (typeof definition?.[key] !== 'string' || definition[key] === '') {
          throw new Error(`installCrd: ${key} must be a non-empty string, got ${JSON.stringify(definition?.[key])}`);
        }
      }
      registry.install(definition);
    },
    async close() {
      for (const w of [...watches]) w.destroy();
      watches.clear();
      kubelet.stop();
      stopJobs();
      stopCustom();
      stopGc();
      for (const p of pending) clearImmediate(p);
      pending.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await kubeconfig.dispose();
    },
  };
}
