import type { Logger } from '@launch/core';
import type { Cluster } from './cluster.js';
import { createInformer, type Informer, type WatchEventType } from './informer.js';
import { LABEL, monitorSelector } from './labels.js';
import type { KindRef } from './manifest.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface RunHandlers {
  /** Events of the run's Job or custom object. */
  onObject(type: WatchEventType, obj: Obj): void;
  /** Events of the run's pods. */
  onPod(type: WatchEventType, obj: Obj): void;
  /** A watch failed to list (e.g. 403): the run cannot be followed. */
  onWatchError?(error: unknown, what: string): void;
}

export interface TrackTarget {
  cluster: Cluster;
  namespace: string;
  kind: KindRef;
  agentName: string;
  /** Value of the `launch.dev/item-id` label on the run's objects and pods. */
  itemLabel: string;
}

export interface Monitor {
  /** Routes the target's events to `handlers` (replaying cached objects first); returns the untrack function. */
  track(target: TrackTarget, handlers: RunHandlers): { synced: Promise<void>; untrack: () => void };
  /** Cached objects of the target's kind carrying its item label (after the watches listed); [] when no run tracks its informer. */
  cached(target: TrackTarget): Obj[];
  /** Open informers (each holds one watch). */
  informerCount(): number;
  stats(): { lists: number; watches: number; relists410: number; reconnects: number };
  close(): void;
}

interface Shared {
  informer: Informer;
  routes: Map<string, Set<(type: WatchEventType, obj: Obj) => void>>;
  what: string;
  errorRoutes: Set<(error: unknown, what: string) => void>;
  /** Runs tracking through this informer; at 0 the idle timer stops it. */
  users: number;
  idleTimer?: NodeJS.Timeout;
}

/**
 * One label-selected informer per (cluster, namespace, resource, agent), shared by every run of the runner; events
 * are dispatched to runs by their `launch.dev/item-id` label, so 500 runs in a namespace cost two watches. An
 * informer no run uses any more is stopped `idleStopMs` after its last run untracked (a run that starts meanwhile
 * keeps it), so an agent that once ran in a namespace does not hold its watches and cache forever.
 */
export function createMonitor(options: {
  logger: Logger;
  backoff: { initial: number; max: number };
  timeoutSeconds: number;
  /** Time an unused informer stays open (0: stopped at once). */
  idleStopMs: number;
}): Monitor {
  const shared = new Map<string, Shared>();

  const stopEntry = (key: string, entry: Shared) => {
    if (entry.idleTimer) clearTimeout(entry.idleTimer);
    entry.idleTimer = undefined;
    entry.informer.stop();
    if (shared.get(key) === entry) shared.delete(key);
  };

  /** A run started using the entry: cancel a pending idle stop. */
  const use = (entry: Shared) => {
    entry.users++;
    if (entry.idleTimer) clearTimeout(entry.idleTimer);
    entry.idleTimer = undefined;
  };

  /** A run stopped using the entry: when it was the last, stop the informer after the idle time. */
  const release = (key: string, entry: Shared) => {
    entry.users = Math.max(0, entry.users - 1);
    if (entry.users > 0 || shared.get(key) !== entry) return;
    if (options.idleStopMs === 0) return stopEntry(key, entry);
    entry.idleTimer ??= setTimeout(() => {
      entry.idleTimer = undefined;
      if (entry.users === 0) stopEntry(key, entry);
    }, options.idleStopMs);
    // Never keeps the agent's process alive.
    entry.idleTimer.unref();
  };

  const keyOf = (cluster: Cluster, namespace: string, resource: 'pods' | KindRef, agentName: string) => {
    const res = resource === 'pods' ? 'pods' : `${resource.group}/${resource.version}/${resource.plural}`;
    return { key: `${cluster.key}|${namespace}|${res}|${agentName}`, res };
  };

  const get = (cluster: Cluster, namespace: string, resource: 'pods' | KindRef, agentName: string): { key: string; entry: Shared } => {
    const { key, res } = keyOf(cluster, namespace, resource, agentName);
    let entry = shared.get(key);
    if (entry) return { key, entry };
    const routes: Shared['routes'] = new Map();
    const errorRoutes: Shared['errorRoutes'] = new Set();
    const what = `${res} in namespace "${namespace}"`;
    const informer = createInformer({
      cluster,
      namespace,
      resource: resource === 'pods' ? 'pods' : { group: resource.group, version: resource.version, plural: resource.plural },
      labelSelector: monitorSelector(agentName),
      backoff: options.backoff,
      timeoutSeconds: options.timeoutSeconds,
      logger: options.logger,
      onError: (error) => {
        for (const r of [...errorRoutes]) r(error, what);
      },
      onGiveUp: () => {
        if (shared.get(key) === entry) shared.delete(key);
      },
    });
    informer.on((type, obj) => {
      const label = obj?.metadata?.labels?.[LABEL.itemId];
      if (typeof label !== 'string') return;
      for (const h of [...(routes.get(label) ?? [])]) h(type, obj);
    });
    entry = { informer, routes, what, errorRoutes, users: 0 };
    shared.set(key, entry);
    return { key, entry };
  };

  const attach = (s: Shared, label: string, h: (type: WatchEventType, obj: Obj) => void) => {
    let set = s.routes.get(label);
    if (!set) s.routes.set(label, (set = new Set()));
    set.add(h);
    for (const obj of [...s.informer.objects()]) if (obj?.metadata?.labels?.[LABEL.itemId] === label) h('ADDED', obj);
    return () => {
      set!.delete(h);
      if (set!.size === 0) s.routes.delete(label);
    };
  };

  return {
    track(target, handlers) {
      const o = get(target.cluster, target.namespace, target.kind, target.agentName);
      const p = get(target.cluster, target.namespace, 'pods', target.agentName);
      const objects = o.entry;
      const pods = p.entry;
      use(objects);
      use(pods);
      let tracked = true;
      const onError = (e: unknown, what: string) => handlers.onWatchError?.(e, what);
      objects.errorRoutes.add(onError);
      pods.errorRoutes.add(onError);
      const detachObject = attach(objects, target.itemLabel, (t, o) => handlers.onObject(t, o));
      const detachPods = attach(pods, target.itemLabel, (t, o) => handlers.onPod(t, o));
      return {
        synced: Promise.all([objects.informer.synced, pods.informer.synced]).then(() => undefined),
        untrack: () => {
          if (!tracked) return;
          tracked = false;
          detachObject();
          detachPods();
          objects.errorRoutes.delete(onError);
          pods.errorRoutes.delete(onError);
          release(o.key, objects);
          release(p.key, pods);
        },
      };
    },
    cached(target) {
      // Only a tracked target's informer is read: looking must not start (and leak) a watch.
      const objects = shared.get(keyOf(target.cluster, target.namespace, target.kind, target.agentName).key);
      if (!objects) return [];
      return [...objects.informer.objects()].filter((o) => o?.metadata?.labels?.[LABEL.itemId] === target.itemLabel);
    },
    informerCount: () => shared.size,
    stats() {
      const total = { lists: 0, watches: 0, relists410: 0, reconnects: 0 };
      for (const s of shared.values()) for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += s.informer.stats[k];
      return total;
    },
    close() {
      for (const [key, s] of [...shared]) stopEntry(key, s);
      shared.clear();
    },
  };
}
