/**
 * Authentication and RBAC authorization for the Kubernetes test server, as kube-apiserver does them with
 * `--authorization-mode=RBAC`: bearer tokens identify users (the server's own token is a cluster admin, in
 * `system:masters`; tokens issued for a ServiceAccount identify `system:serviceaccount:<ns>:<name>`), and a request is
 * allowed only when a Role or ClusterRole bound to the user or one of its groups has a rule matching its attributes.
 */
import type { ResourceInfo, ResourceRegistry } from './resources.js';
import type { KubeObject } from './types.js';

export interface UserInfo {
  name: string;
  groups: string[];
}

/** The attributes kube-apiserver's request-info resolver derives from a request. */
export interface RequestAttributes {
  verb: string;
  apiGroup: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs?: string[];
  nonResourceURLs?: string[];
}

interface Subject {
  kind?: string;
  name?: string;
  namespace?: string;
}

/** The identity of a ServiceAccount's token, with the groups the token authenticator gives it. */
export function serviceAccountUser(namespace: string, name: string): UserInfo {
  return {
    name: `system:serviceaccount:${namespace}:${name}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
  };
}

function has(list: string[] | undefined, value: string): boolean {
  return (list ?? []).some((x) => x === '*' || x === value);
}

function ruleAllows(rule: PolicyRule, a: RequestAttributes): boolean {
  if (!has(rule.verbs, a.verb) || !has(rule.apiGroups, a.apiGroup)) return false;
  const resources = rule.resources ?? [];
  const combined = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const resourceOk = resources.some((r) => r === '*' || r === combined || (a.subresource !== undefined && r === `*/${a.subresource}`));
  if (!resourceOk) return false;
  // resourceNames restrict to named objects: a create, list or watch (no name) never matches such a rule.
  if (rule.resourceNames && rule.resourceNames.length > 0) return a.name !== undefined && rule.resourceNames.includes(a.name);
  return true;
}

function subjectMatches(subject: Subject, user: UserInfo, bindingNamespace: string | undefined): boolean {
  switch (subject.kind) {
    case 'ServiceAccount':
      return user.name === `system:serviceaccount:${subject.namespace ?? bindingNamespace}:${subject.name}`;
    case 'User':
      return user.name === subject.name;
    case 'Group':
      return subject.name !== undefined && user.groups.includes(subject.name);
    default:
      return false;
  }
}

const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

/**
 * The attributes of a request, from its method, path and query alone, as kube-apiserver's RequestInfoFactory derives
 * them before any routing (so a request for a resource that is not served is refused, not answered 404, when not
 * allowed). Undefined for non-resource requests (`/api`, `/apis/batch/v1`, `/version`, `/healthz`).
 */
export function requestInfo(method: string, pathname: string, query: Record<string, string>): RequestAttributes | undefined {
  const segments = pathname
    .split('/')
    .filter((x) => x !== '')
    .map((x) => {
      try {
        return decodeURIComponent(x);
      } catch {
        return x;
      }
    });
  let apiGroup: string;
  let rest: string[];
  if (segments[0] === 'api' && segments.length >= 2) [apiGroup, rest] = ['', segments.slice(2)];
  else if (segments[0] === 'apis' && segments.length >= 3) [apiGroup, rest] = [segments[1]!, segments.slice(3)];
  else return undefined;
  if (rest.length === 0) return undefined;
  let watchPath = false;
  if (rest[0] === 'watch') {
    watchPath = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length > 1) {
    namespace = rest[1];
    if (rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2]!)) rest = rest.slice(2);
  }
  const [resource, name, subresource] = rest;
  if (!resource) return undefined;
  let verb: string;
  switch (method) {
    case 'GET':
    case 'HEAD':
      verb = watchPath || (name === undefined && (query.watch === 'true' || query.watch === '1')) ? 'watch' : name === undefined ? 'list' : 'get';
      break;
    case 'POST':
      verb = 'create';
      break;
    case 'PUT':
      verb = 'update';
      break;
    case 'PATCH':
      verb = 'patch';
      break;
    case 'DELETE':
      verb = name === undefined ? 'deletecollection' : 'delete';
      break;
    default:
      verb = method.toLowerCase();
  }
  return {
    verb,
    apiGroup,
    resource,
    ...(subresource !== undefined ? { subresource } : {}),
    ...(namespace !== undefined ? { namespace } : {}),
    ...(name !== undefined ? { name } : {}),
  };
}

export interface RbacStore {
  list(r: ResourceInfo, namespace: string | undefined): KubeObject[];
  get(r: ResourceInfo, namespace: string | undefined, name: string): KubeObject | undefined;
}

export interface Authorizer {
  /** Whether `user` may make a request with these attributes; `undefined` attributes are non-resource requests. */
  allows(user: UserInfo, attributes: RequestAttributes | undefined): boolean;
}

/** RBAC over the Roles, ClusterRoles and their bindings stored in the server, read at each request. */
export function createRbacAuthorizer(store: RbacStore, registry: ResourceRegistry): Authorizer {
  const roles = registry.lookup('rbac.authorization.k8s.io', 'v1', 'roles');
  const roleBindings = registry.lookup('rbac.authorization.k8s.io', 'v1', 'rolebindings');
  const clusterRoles = registry.lookup('rbac.authorization.k8s.io', 'v1', 'clusterroles');
  const clusterRoleBindings = registry.lookup('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings');

  const rulesOf = (roleRef: { kind?: string; name?: string } | undefined, namespace: string | undefined): PolicyRule[] => {
    if (!roleRef?.name) return [];
    const role =
      roleRef.kind === 'ClusterRole'
        ? store.get(clusterRoles, undefined, roleRef.name)
        : roleRef.kind === 'Role'
          ? store.get(roles, namespace, roleRef.name)
          : undefined;
    return ((role as { rules?: PolicyRule[] } | undefined)?.rules ?? []) as PolicyRule[];
  };
  const boundRules = (user: UserInfo, binding: KubeObject, namespace: string | undefined): PolicyRule[] => {
    const subjects = ((binding as { subjects?: Subject[] }).subjects ?? []) as Subject[];
    if (!subjects.some((s) => subjectMatches(s, user, namespace))) return [];
    return rulesOf((binding as { roleRef?: { kind?: string; name?: string } }).roleRef, namespace);
  };

  return {
    allows(user, a) {
      if (user.groups.includes('system:masters')) return true;
      // Discovery, /version and /healthz: the system:discovery and system:public-info-viewer ClusterRoles, bound to
      // every authenticated user by default.
      if (a === undefined) return user.groups.includes('system:authenticated');
      for (const binding of store.list(clusterRoleBindings, undefined)) {
        if (boundRules(user, binding, undefined).some((rule) => ruleAllows(rule, a))) return true;
      }
      if (a.namespace === undefined) return false;
      for (const binding of store.list(roleBindings, a.namespace)) {
        if (boundRules(user, binding, a.namespace).some((rule) => ruleAllows(rule, a))) return true;
      }
      return false;
    },
  };
}
