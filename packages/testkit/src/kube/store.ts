import { apiVersionOf, resourceKey, type ResourceInfo } from './resources.js';
import type { KubeObject } from './types.js';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One committed change: what a watch at that revision would see. Objects in the store are never mutated in place. */
export interface Change {
  type: ChangeType;
  rv: number;
  resource: ResourceInfo;
  object: KubeObject;
  previous?: KubeObject;
}

export interface Store {
  /** The newest committed revision (what a list reports as its resourceVersion). */
  revision(): number;
  /** Revisions at or below this have been forgotten: watching or paging from them is 410 Gone. */
  compactedRevision(): number;
  get(r: ResourceInfo, namespace: string | undefined, name: string): KubeObject | undefined;
  list(r: ResourceInfo, namespace: string | undefined): KubeObject[];
  /** All objects whose ownerReferences name this uid, across resource types. */
  dependents(uid: string): Array<{ resource: ResourceInfo; object: KubeObject }>;
  put(r: ResourceInfo, obj: KubeObject, type: 'ADDED' | 'MODIFIED'): KubeObject;
  remove(r: ResourceInfo, obj: KubeObject): KubeObject;
  changesSince(r: ResourceInfo, rv: number): Change[];
  compact(): void;
  onChange(listener: (change: Change) => void): () => void;
}

function storeKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

/** The in-memory "etcd": one global revision counter, objects per resource type and a bounded change history. */
export function createStore(historyLimit: number): Store {
  const buckets = new Map<string, Map<string, KubeObject>>();
  const history: Change[] = [];
  const listeners = new Set<(change: Change) => void>();
  let rev = 1;
  let compacted = 0;

  const bucket = (r: ResourceInfo) => {
    const key = resourceKey(r);
    let b = buckets.get(key);
    if (!b) buckets.set(key, (b = new Map()));
    return b;
  };

  const commit = (change: Change) => {
    history.push(change);
    if (history.length > historyLimit) {
      // Like etcd compaction: forget the oldest tenth at once.
      const drop = Math.ceil(historyLimit / 10);
      compacted = history[drop - 1]!.rv;
      history.splice(0, drop);
    }
    for (const l of [...listeners]) l(change);
  };

  return {
    revision: () => rev,
    compactedRevision: () => compacted,
    get: (r, namespace, name) => bucket(r).get(storeKey(r.namespaced ? namespace : undefined, name)),
    list(r, namespace) {
      const out: KubeObject[] = [];
      for (const obj of bucket(r).values()) {
        if (namespace === undefined || !r.namespaced || obj.metadata.namespace === namespace) out.push(obj);
      }
      return out.sort((a, b) => storeKey(a.metadata.namespace, a.metadata.name!).localeCompare(storeKey(b.metadata.namespace, b.metadata.name!)));
    },
    dependents(uid) {
      const out: Array<{ resource: ResourceInfo; object: KubeObject }> = [];
      for (const b of buckets.values()) {
        for (const obj of b.values()) {
          if (obj.metadata.ownerReferences?.some((o) => o.uid === uid)) {
            out.push({ resource: resourceOf(obj), object: obj });
          }
        }
      }
      return out;
    },
    put(r, obj, type) {
      const key = storeKey(r.namespaced ? obj.metadata.namespace : undefined, obj.metadata.name!);
      const b = bucket(r);
      const previous = b.get(key);
      rev += 1;
      const stored: KubeObject = {
        ...obj,
        apiVersion: apiVersionOf(r),
        kind: r.kind,
        metadata: { ...obj.metadata, resourceVersion: String(rev) },
      };
      resources.set(stored, r);
      b.set(key, stored);
      commit({ type, rv: rev, resource: r, object: stored, ...(previous ? { previous } : {}) });
      return stored;
    },
    remove(r, obj) {
      const key = storeKey(r.namespaced ? obj.metadata.namespace : undefined, obj.metadata.name!);
      const b = bucket(r);
      const previous = b.get(key);
      b.delete(key);
      rev += 1;
      const gone: KubeObject = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(rev) } };
      commit({ type: 'DELETED', rv: rev, resource: r, object: gone, ...(previous ? { previous } : {}) });
      return gone;
    },
    changesSince(r, rv) {
      // History is ordered by revision: binary search for the first change after rv.
      let lo = 0;
      let hi = history.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (history[mid]!.rv <= rv) lo = mid + 1;
        else hi = mid;
      }
      const key = resourceKey(r);
      return history.slice(lo).filter((c) => resourceKey(c.resource) === key);
    },
    compact() {
      compacted = rev;
      history.length = 0;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

const resources = new WeakMap<KubeObject, ResourceInfo>();

/** The resource type an object was stored under. */
export function resourceOf(obj: KubeObject): ResourceInfo {
  const r = resources.get(obj);
  if (!r) throw new Error(`object ${obj.metadata.name} was not stored by the kube test server`);
  return r;
}
