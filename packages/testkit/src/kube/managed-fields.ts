import { fieldsOf, shapeOf } from './schema.js';
import { kubeTime, type Json, type KubeObject } from './types.js';

/** One `metadata.managedFields` entry, shaped as kube-apiserver writes it (and client-node's V1ManagedFieldsEntry reads it). */
export interface ManagedFieldsEntry {
  manager?: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Json;
  subresource?: string;
}

/**
 * List fields that structured-merge-diff treats as maps keyed by some of their items' fields (`x-kubernetes-list-map-keys`)
 * or as sets; any other list is atomic (one leaf). Keyed by `<model>.<field>`.
 */
const LIST_KEYS: Record<string, string[] | 'set'> = {
  'V1ObjectMeta.ownerReferences': ['uid'],
  'V1ObjectMeta.finalizers': 'set',
  'V1PodSpec.containers': ['name'],
  'V1PodSpec.initContainers': ['name'],
  'V1PodSpec.ephemeralContainers': ['name'],
  'V1PodSpec.volumes': ['name'],
  'V1PodSpec.imagePullSecrets': ['name'],
  'V1PodSpec.hostAliases': ['ip'],
  'V1PodSpec.resourceClaims': ['name'],
  'V1PodSpec.schedulingGates': ['name'],
  'V1PodSpec.topologySpreadConstraints': ['topologyKey', 'whenUnsatisfiable'],
  'V1Container.env': ['name'],
  'V1Container.ports': ['containerPort', 'protocol'],
  'V1Container.volumeMounts': ['mountPath'],
  'V1Container.volumeDevices': ['devicePath'],
  'V1Container.resizePolicy': ['resourceName'],
  'V1EphemeralContainer.env': ['name'],
  'V1EphemeralContainer.volumeMounts': ['mountPath'],
  'V1PodStatus.conditions': ['type'],
  'V1PodStatus.podIPs': ['ip'],
  'V1PodStatus.hostIPs': ['ip'],
  'V1ServiceSpec.ports': ['port', 'protocol'],
  'V1ServiceStatus.conditions': ['type'],
  'V1DeploymentStatus.conditions': ['type'],
  'V1NamespaceStatus.conditions': ['type'],
  'V1PersistentVolumeClaimStatus.conditions': ['type'],
};

/** Paths the field manager never tracks (structured-merge-diff's strip set plus the deletion fields the server owns). */
const STRIPPED = new Set([
  'f:apiVersion',
  'f:kind',
  'f:metadata',
  'f:metadata\nf:name',
  'f:metadata\nf:namespace',
  'f:metadata\nf:creationTimestamp',
  'f:metadata\nf:selfLink',
  'f:metadata\nf:uid',
  'f:metadata\nf:generation',
  'f:metadata\nf:managedFields',
  'f:metadata\nf:resourceVersion',
  'f:metadata\nf:deletionTimestamp',
  'f:metadata\nf:deletionGracePeriodSeconds',
]);

/** Struct fields a Go zero value of the kind already has (non-pointer structs and non-omitempty lists). */
const ZERO_PRESENT = [
  'f:spec',
  'f:status',
  'f:spec\nf:containers',
  'f:spec\nf:template',
  'f:spec\nf:template\nf:metadata',
  'f:spec\nf:template\nf:spec',
  'f:spec\nf:template\nf:spec\nf:containers',
  'f:spec\nf:strategy',
];

const isPlainObject = (v: unknown): v is Record<string, Json> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Every path of an object: a leaf maps to its JSON, an inner node to undefined. Paths are path elements joined by newlines. */
function pathsOf(obj: Json, model: string | undefined): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  const walk = (v: Json, type: string | undefined, path: string) => {
    const shape = type ? shapeOf(type) : isPlainObject(v) ? ({ kind: 'struct', name: '' } as const) : ({ kind: 'leaf' } as const);
    if (shape.kind === 'struct' && isPlainObject(v) && Object.keys(v).length > 0) {
      if (path) out.set(path, undefined);
      const fields = shape.name ? fieldsOf(shape.name) : undefined;
      for (const [key, child] of Object.entries(v)) {
        if (child === undefined) continue;
        const at = path ? `${path}\nf:${key}` : `f:${key}`;
        if (at !== 'f:metadata' && STRIPPED.has(at)) continue;
        // Untyped (custom) objects descend everywhere; typed ones follow the model.
        const childType = shape.name ? fields?.get(key) : key === 'metadata' && !path ? 'V1ObjectMeta' : undefined;
        if (shape.name && childType === undefined) continue;
        const listKeys = shape.name ? LIST_KEYS[`${shape.name}.${key}`] : undefined;
        if (Array.isArray(child) && listKeys && child.length > 0) {
          out.set(at, undefined);
          const itemType = childType ? shapeOf(childType) : undefined;
          for (const item of child) {
            let element: string;
            if (listKeys === 'set') element = `v:${JSON.stringify(item)}`;
            else {
              const key: Record<string, Json> = {};
              for (const k of [...listKeys].sort()) if (isPlainObject(item) && item[k] !== undefined) key[k] = item[k];
              element = `k:${JSON.stringify(key)}`;
            }
            const itemPath = `${at}\n${element}`;
            if (listKeys === 'set') out.set(itemPath, JSON.stringify(item));
            else walk(item, itemType?.kind === 'list' ? itemType.of : undefined, itemPath);
          }
          continue;
        }
        walk(child, childType, at);
      }
      return;
    }
    if (shape.kind === 'map' && isPlainObject(v) && Object.keys(v).length > 0) {
      // Map entries (labels, annotations, resource quantities) are leaves.
      out.set(path, undefined);
      for (const [key, child] of Object.entries(v)) out.set(`${path}\nf:${key}`, JSON.stringify(child));
      return;
    }
    if (path) out.set(path, JSON.stringify(v ?? null));
  };
  walk(obj, model, '');
  out.delete('f:metadata');
  return out;
}

function parseFields(fields: Json, prefix = '', into = new Set<string>()): Set<string> {
  if (!isPlainObject(fields)) return into;
  for (const [key, child] of Object.entries(fields)) {
    if (key === '.') {
      into.add(prefix);
      continue;
    }
    const at = prefix ? `${prefix}\n${key}` : key;
    if (isPlainObject(child) && Object.keys(child).length > 0) parseFields(child, at, into);
    else into.add(at);
  }
  return into;
}

function serializeFields(set: Set<string>): Json {
  const root: Record<string, Json> = {};
  const inner = new Set<string>();
  for (const path of set) {
    const parts = path.split('\n');
    for (let i = 1; i < parts.length; i++) inner.add(parts.slice(0, i).join('\n'));
  }
  for (const path of set) {
    let node = root;
    for (const part of path.split('\n')) node = node[part] ??= {};
    // A member that also has members below it is marked with "." (structured-merge-diff's FieldsV1 encoding).
    if (inner.has(path)) node['.'] = {};
  }
  const sortKeys = (node: Record<string, Json>): Record<string, Json> =>
    Object.fromEntries(
      Object.keys(node)
        .sort((a, b) => (a === '.' ? -1 : b === '.' ? 1 : a < b ? -1 : a > b ? 1 : 0))
        .map((k) => [k, sortKeys(node[k])]),
    );
  return sortKeys(root);
}

export interface ManagedFieldsUpdate {
  /** Who made the change: the `fieldManager` query parameter, else the User-Agent's product, as the real server does. */
  manager: string;
  apiVersion: string;
  /** `status` for writes through the status subresource: only status is tracked; otherwise status is not. */
  subresource?: 'status';
  /** The client-node model of a built-in kind; undefined for custom resources (every object field is tracked). */
  model: string | undefined;
  now?: number;
}

/**
 * The managedFields after an `Update` operation (create, update or non-apply patch), as structured-merge-diff computes
 * them: the manager's entry gains every field it added or changed, other managers lose those, removed fields leave
 * every entry, and empty entries disappear. `previous` is undefined on create.
 */
export function updateManagedFields(previous: KubeObject | undefined, next: KubeObject, update: ManagedFieldsUpdate): ManagedFieldsEntry[] {
  const inScope = (p: string) =>
    update.subresource === 'status' ? p === 'f:status' || p.startsWith('f:status\n') : p !== 'f:status' && !p.startsWith('f:status\n');
  // Only the part of the object this kind of write can own is walked.
  const project = (o: KubeObject): KubeObject =>
    update.subresource === 'status' ? ({ metadata: {}, status: o.status } as KubeObject) : { ...o, status: undefined };
  const before = previous
    ? pathsOf(project(previous), update.model)
    : new Map<string, string | undefined>(update.model ? ZERO_PRESENT.map((p) => [p, undefined]) : []);
  const after = pathsOf(project(next), update.model);
  const changed = new Set<string>();
  for (const [p, value] of after) {
    if (!inScope(p)) continue;
    if (!before.has(p) || (value !== undefined && before.get(p) !== value)) changed.add(p);
  }
  const removed = new Set<string>();
  for (const p of before.keys()) if (inScope(p) && !after.has(p)) removed.add(p);

  const previousEntries = (previous?.metadata.managedFields as ManagedFieldsEntry[] | undefined) ?? [];
  if (changed.size === 0 && removed.size === 0) return previousEntries;
  const mine = (e: ManagedFieldsEntry) =>
    e.manager === (update.manager || undefined) && e.operation === 'Update' && e.apiVersion === update.apiVersion && e.subresource === update.subresource;
  const time = kubeTime(update.now);
  // Entries are parsed only when the write touches them; the others keep their fieldsV1 as they are.
  const entries = previousEntries.map((e) => {
    const own = mine(e);
    const lose = own ? removed : new Set([...removed, ...changed]);
    if (!own && ![...lose].some((p) => hasPath(e.fieldsV1, p))) return { entry: e };
    const set = parseFields(e.fieldsV1);
    for (const p of lose) set.delete(p);
    if (own) for (const p of changed) set.add(p);
    return { entry: { ...e, ...(own && changed.size > 0 ? { time } : {}) }, set };
  });
  if (!previousEntries.some(mine) && changed.size > 0) {
    entries.push({
      entry: {
        ...(update.manager ? { manager: update.manager } : {}),
        operation: 'Update',
        apiVersion: update.apiVersion,
        time,
        fieldsType: 'FieldsV1',
        fieldsV1: {},
        ...(update.subresource ? { subresource: update.subresource } : {}),
      },
      set: changed,
    });
  }
  return entries
    .filter((e) => !e.set || e.set.size > 0)
    .map((e) => (e.set ? { ...e.entry, fieldsV1: serializeFields(e.set) } : e.entry))
    .sort((p, q) => {
      if (p.operation !== q.operation) return p.operation < q.operation ? -1 : 1;
      if (p.time !== q.time) return p.time < q.time ? -1 : 1;
      if ((p.manager ?? '') !== (q.manager ?? '')) return (p.manager ?? '') < (q.manager ?? '') ? -1 : 1;
      if (p.apiVersion !== q.apiVersion) return p.apiVersion < q.apiVersion ? -1 : 1;
      return (p.subresource ?? '') < (q.subresource ?? '') ? -1 : (p.subresource ?? '') > (q.subresource ?? '') ? 1 : 0;
    });
}

/** Whether a FieldsV1 tree holds a path as a member. */
function hasPath(fields: Json, path: string): boolean {
  let node = fields;
  for (const part of path.split('\n')) {
    if (!isPlainObject(node) || !(part in node)) return false;
    node = node[part];
  }
  return isPlainObject(node) && (Object.keys(node).length === 0 || '.' in node);
}

/** The manager name kube-apiserver derives from a User-Agent: the part before the first `/`, printable, at most 128 bytes. */
export function managerFromUserAgent(userAgent: string | undefined): string {
  const head = (userAgent ?? '').split('/')[0]!;
  let out = '';
  for (const ch of head) {
    if (!/^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(ch)) continue;
    if (Buffer.byteLength(out + ch) > 128) break;
    out += ch;
  }
  return out;
}
