import type { Api } from './api.js';
import type { Change } from './store.js';
import type { KubeObject } from './types.js';
import type { ResourceInfo } from './resources.js';

/**
 * The garbage collector: cascades background deletion to dependents (by ownerReferences uid) and completes
 * foreground deletion once an owner has no dependents left.
 */
export function startGarbageCollector(api: Api, defer: (fn: () => void) => void): () => void {
  const { store } = api;

  const deleteDependents = (owner: KubeObject) => {
    for (const dep of store.dependents(owner.metadata.uid!)) {
      if (dep.object.metadata.deletionTimestamp) continue;
      try {
        api.delete(dep.resource, dep.object.metadata.namespace, dep.object.metadata.name!, { propagationPolicy: 'Background' });
      } catch {
        // Already gone: nothing to collect.
      }
    }
  };

  const finishForeground = (r: ResourceInfo, owner: KubeObject) => {
    const live = store.get(r, owner.metadata.namespace, owner.metadata.name!);
    if (!live || live.metadata.uid !== owner.metadata.uid) return;
    if (!live.metadata.finalizers?.includes('foregroundDeletion')) return;
    if (store.dependents(live.metadata.uid!).length > 0) return;
    const finalizers = live.metadata.finalizers.filter((f) => f !== 'foregroundDeletion');
    const meta = { ...live.metadata, finalizers };
    if (!finalizers.length) delete (meta as { finalizers?: string[] }).finalizers;
    const updated = store.put(r, { ...live, metadata: meta }, 'MODIFIED');
    if (!finalizers.length) api.finalizeDelete(r, updated);
  };

  const onChange = (change: Change) => {
    const { object, resource } = change;
    if (change.type === 'DELETED') {
      // Background cascade: whoever still names the deleted owner goes too.
      defer(() => deleteDependents(object));
      for (const ref of object.metadata.ownerReferences ?? []) {
        defer(() => {
          const r = api.registry.byKind(ref.apiVersion, ref.kind);
          const owner = r && store.get(r, object.metadata.namespace, ref.name);
          if (r && owner && owner.metadata.uid === ref.uid) finishForeground(r, owner);
        });
      }
      return;
    }
    if (
      change.type === 'MODIFIED' &&
      object.metadata.finalizers?.includes('foregroundDeletion') &&
      !change.previous?.metadata.finalizers?.includes('foregroundDeletion')
    ) {
      defer(() => {
        deleteDependents(object);
        finishForeground(resource, object);
      });
    }
  };
  return store.onChange(onChange);
}
