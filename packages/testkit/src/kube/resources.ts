import { Job } from 'kubernetes-models/batch/v1/Job';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Endpoints } from 'kubernetes-models/v1/Endpoints';
import { Event } from 'kubernetes-models/v1/Event';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { pathNotFound, plainNotFound } from './status.js';
import type { Json } from './types.js';

/** What the server knows about one resource type (what discovery would say). */
export interface ResourceInfo {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  /** Writes to the main resource keep status; status changes go through `/status`. */
  statusSubresource: boolean;
  /** What happens to dependents when no propagationPolicy is given (batch/v1 Jobs orphan their pods, as the real API does). */
  defaultPropagation: 'Orphan' | 'Background';
  /** Which name rule the real apiserver applies. */
  nameRule: 'subdomain' | 'label';
  /** Built-in kinds are validated against their schema (kubernetes-models). */
  validate?: (obj: Json) => void;
  /** A custom resource: list items keep apiVersion/kind (unstructured), as the real server serves them. */
  custom: boolean;
  /** The `@kubernetes/client-node` model that declares this built-in kind's fields (for pruning and managedFields). */
  model?: string;
}

/** A custom resource definition the server should serve (like an installed CRD). */
export interface CustomResourceDefinition {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced?: boolean;
}

type ModelClass = new (data: Json) => { validate(): void };

function builtin(group: string, version: string, plural: string, kind: string, model: ModelClass, extra: Partial<ResourceInfo> = {}): ResourceInfo {
  return {
    group,
    version,
    plural,
    singular: kind.toLowerCase(),
    kind,
    namespaced: true,
    statusSubresource: false,
    defaultPropagation: 'Background',
    nameRule: 'subdomain',
    validate: (obj) => new model(obj).validate(),
    custom: false,
    model: `V1${kind}`,
    ...extra,
  };
}

const BUILTINS: ResourceInfo[] = [
  builtin('', 'v1', 'namespaces', 'Namespace', Namespace as ModelClass, { namespaced: false, nameRule: 'label', statusSubresource: true }),
  builtin('', 'v1', 'pods', 'Pod', Pod as ModelClass, { statusSubresource: true }),
  builtin('', 'v1', 'secrets', 'Secret', Secret as ModelClass),
  builtin('', 'v1', 'configmaps', 'ConfigMap', ConfigMap as ModelClass),
  builtin('', 'v1', 'services', 'Service', Service as ModelClass, { nameRule: 'label', statusSubresource: true }),
  builtin('', 'v1', 'serviceaccounts', 'ServiceAccount', ServiceAccount as ModelClass),
  builtin('', 'v1', 'endpoints', 'Endpoints', Endpoints as ModelClass),
  builtin('', 'v1', 'events', 'Event', Event as ModelClass, { model: 'CoreV1Event' }),
  builtin('', 'v1', 'persistentvolumeclaims', 'PersistentVolumeClaim', PersistentVolumeClaim as ModelClass, { statusSubresource: true }),
  builtin('batch', 'v1', 'jobs', 'Job', Job as ModelClass, {
    statusSubresource: true,
    defaultPropagation: 'Orphan',
    nameRule: 'label',
  }),
  builtin('apps', 'v1', 'deployments', 'Deployment', Deployment as ModelClass, { statusSubresource: true }),
  builtin('policy', 'v1', 'poddisruptionbudgets', 'PodDisruptionBudget', PodDisruptionBudget as ModelClass, { statusSubresource: true }),
  // RBAC objects: stored and validated; enforced when the server runs with `authorization: 'RBAC'` (rbac.ts).
  builtin('rbac.authorization.k8s.io', 'v1', 'roles', 'Role', Role as ModelClass),
  builtin('rbac.authorization.k8s.io', 'v1', 'rolebindings', 'RoleBinding', RoleBinding as ModelClass),
  builtin('rbac.authorization.k8s.io', 'v1', 'clusterroles', 'ClusterRole', ClusterRole as ModelClass, { namespaced: false }),
  builtin('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings', 'ClusterRoleBinding', ClusterRoleBinding as ModelClass, { namespaced: false }),
];

/** CRDs installed by default: the kinds the Launch runners submit. */
export const DEFAULT_CUSTOM_RESOURCES: CustomResourceDefinition[] = [
  { group: 'batch.volcano.sh', version: 'v1alpha1', plural: 'jobs', kind: 'Job' },
  { group: 'kubeflow.org', version: 'v1', plural: 'pytorchjobs', kind: 'PyTorchJob' },
  { group: 'kubeflow.org', version: 'v1', plural: 'tfjobs', kind: 'TFJob' },
  { group: 'kubeflow.org', version: 'v1', plural: 'mpijobs', kind: 'MPIJob' },
  { group: 'jobset.x-k8s.io', version: 'v1alpha2', plural: 'jobsets', kind: 'JobSet' },
  { group: 'ray.io', version: 'v1', plural: 'rayjobs', kind: 'RayJob' },
];

export function customResource(def: CustomResourceDefinition): ResourceInfo {
  return {
    group: def.group,
    version: def.version,
    plural: def.plural,
    singular: def.kind.toLowerCase(),
    kind: def.kind,
    namespaced: def.namespaced ?? true,
    statusSubresource: true,
    defaultPropagation: 'Background',
    nameRule: 'subdomain',
    custom: true,
  };
}

export function apiVersionOf(r: Pick<ResourceInfo, 'group' | 'version'>): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

export function resourceKey(r: Pick<ResourceInfo, 'group' | 'version' | 'plural'>): string {
  return `${r.group}/${r.version}/${r.plural}`;
}

/** Groups kube-apiserver 1.31 serves itself (not through CRDs): a miss inside one is a JSON 404 Status, not plain text. */
const BUILTIN_GROUPS = new Set([
  '',
  'admissionregistration.k8s.io',
  'apiextensions.k8s.io',
  'apiregistration.k8s.io',
  'apps',
  'authentication.k8s.io',
  'authorization.k8s.io',
  'autoscaling',
  'batch',
  'certificates.k8s.io',
  'coordination.k8s.io',
  'discovery.k8s.io',
  'events.k8s.io',
  'flowcontrol.apiserver.k8s.io',
  'networking.k8s.io',
  'node.k8s.io',
  'policy',
  'rbac.authorization.k8s.io',
  'resource.k8s.io',
  'scheduling.k8s.io',
  'storage.k8s.io',
]);

/** Whether kube-apiserver itself serves this group (so a miss under it is go-restful's JSON 404, not plain text). */
export function isBuiltinGroup(group: string): boolean {
  return BUILTIN_GROUPS.has(group);
}

export interface ResourceRegistry {
  /**
   * The served resource, or (when unknown custom groups are allowed) one made up from the path. Otherwise a 404 as
   * kube-apiserver answers it: a JSON Status inside a group-version it serves itself, else plain-text `404 page not found`.
   */
  lookup(group: string, version: string, plural: string, kindHint?: string): ResourceInfo;
  find(group: string, version: string, plural: string): ResourceInfo | undefined;
  byKind(apiVersion: string, kind: string): ResourceInfo | undefined;
  all(): ResourceInfo[];
  /** Serve a CRD from now on (as installing it would); returns the resource, or the existing one if already served. */
  install(def: CustomResourceDefinition): ResourceInfo;
  /** Whether any resource of this group (and version, if given) is served. */
  serves(group: string, version?: string): boolean;
}

export function createResourceRegistry(custom: CustomResourceDefinition[], allowUnknown: boolean): ResourceRegistry {
  const byKey = new Map<string, ResourceInfo>();
  const add = (r: ResourceInfo) => {
    const existing = byKey.get(resourceKey(r));
    if (existing) return existing;
    byKey.set(resourceKey(r), r);
    return r;
  };
  for (const r of BUILTINS) add(r);
  for (const def of custom) add(customResource(def));
  const find = (group: string, version: string, plural: string) => byKey.get(`${group}/${version}/${plural}`);
  const serves = (group: string, version?: string) => [...byKey.values()].some((r) => r.group === group && (version === undefined || r.version === version));
  return {
    find,
    serves,
    install: (def) => add(customResource(def)),
    lookup(group, version, plural, kindHint) {
      const known = find(group, version, plural);
      if (known) return known;
      if (BUILTIN_GROUPS.has(group)) {
        // Inside a built-in group the go-restful container answers; elsewhere nothing is registered at all.
        if (serves(group)) throw pathNotFound();
        throw plainNotFound();
      }
      if (!allowUnknown) throw plainNotFound();
      const kind = kindHint ?? plural.replace(/s$/, '').replace(/^./, (c) => c.toUpperCase());
      return add(customResource({ group, version, plural, kind }));
    },
    byKind(apiVersion, kind) {
      for (const r of byKey.values()) if (apiVersionOf(r) === apiVersion && r.kind === kind) return r;
      return undefined;
    },
    all: () => [...byKey.values()],
  };
}
