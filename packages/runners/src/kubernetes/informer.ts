import type { Logger } from '@launch/core';
import { statusCode } from './api-errors.js';
import type { Cluster } from './cluster.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export type InformerListener = (type: WatchEventType, obj: Obj) => void;

export interface InformerOptions {
  cluster: Cluster;
  namespace: string;
  /** `pods`, or a `{group, version, plural}` served by the custom-objects API (Jobs included). */
  resource: 'pods' | { group: string; version: string; plural: string };
  labelSelector: string;
  backoff: { initial: number; max: number };
  timeoutSeconds: number;
  logger: Logger;
  /** Called with every list/watch failure (for a 403, with the HTTP status), for diagnosis and metrics. */
  onError?: (error: unknown) => void;
  /** Called once when the informer gives up for good (the resource is not served: a missing CRD or API group). */
  onGiveUp?: (error: unknown) => void;
}

/** A shared list+watch of one resource in one namespace, with a cache of the objects it has seen. */
export interface Informer {
  /** Resolves after the first list (or rejects when it failed). */
  readonly synced: Promise<void>;
  on(listener: InformerListener): () => void;
  /** Cached objects (latest version seen). */
  objects(): Iterable<Obj>;
  stop(): void;
  /** Counters for tests and benchmarks. */
  readonly stats: { lists: number; watches: number; relists410: number; reconnects: number };
}

/**
 * Drops what no run reads from a cached object: `metadata.managedFields` (server-side apply bookkeeping, often
 * larger than the rest of a Job or pod), so 500 runs' Jobs and pods cost the agent less memory.
 */
function slim(obj: Obj): Obj {
  if (obj?.metadata && typeof obj.metadata === 'object' && 'managedFields' in obj.metadata) delete obj.metadata.managedFields;
  return obj;
}

/**
 * List, then watch from the list's resourceVersion; on a closed watch resume from the last resourceVersion seen,
 * on `410 Gone` relist (emitting DELETED for objects that vanished meanwhile, MODIFIED for ones that changed), on
 * any other failure reconnect with exponential backoff. Bookmarks keep the resourceVersion fresh.
 */
export function createInformer(o: InformerOptions): Informer {
  const listeners = new Set<InformerListener>();
  const cache = new Map<string, Obj>();
  const stats = { lists: 0, watches: 0, relists410: 0, reconnects: 0 };
  let resourceVersion = '';
  let stopped = false;
  let abort: (() => void) | undefined;
  let wakeSleep: (() => void) | undefined;
  let resolveSynced!: () => void;
  let rejectSynced!: (e: unknown) => void;
  const synced = new Promise<void>((res, rej) => {
    resolveSynced = res;
    rejectSynced = rej;
  });
  synced.catch(() => {});
  let syncedOnce = false;

  const path =
    o.resource === 'pods'
      ? `/api/v1/namespaces/${o.namespace}/pods`
      : `/apis/${o.resource.group}/${o.resource.version}/namespaces/${o.namespace}/${o.resource.plural}`;

  const emit = (type: WatchEventType, obj: Obj) => {
    for (const l of [...listeners]) {
      try {
        l(type, obj);
      } catch (error) {
        o.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'kubernetes watch listener failed');
      }
    }
  };

  const list = async (): Promise<void> => {
    stats.lists++;
    let result: Obj;
    if (o.resource === 'pods') {
      result = (await o.cluster.core.listNamespacedPod({ namespace: o.namespace, labelSelector: o.labelSelector })) as Obj;
    } else {
      result = (await o.cluster.custom.listNamespacedCustomObject({
        ...o.resource,
        namespace: o.namespace,
        labelSelector: o.labelSelector,
      })) as Obj;
    }
    const items: Obj[] = Array.isArray(result.items) ? result.items : [];
    const seen = new Set<string>();
    for (const item of items) {
      slim(item);
      const name = item?.metadata?.name;
      if (typeof name !== 'string') continue;
      seen.add(name);
      const old = cache.get(name);
      cache.set(name, item);
      if (!old) emit('ADDED', item);
      else if (old.metadata?.resourceVersion !== item.metadata?.resourceVersion) emit('MODIFIED', item);
    }
    for (const [name, old] of [...cache]) {
      if (!seen.has(name)) {
        cache.delete(name);
        emit('DELETED', old);
      }
    }
    resourceVersion = String(result.metadata?.resourceVersion ?? '');
  };

  const watchOnce = (): Promise<unknown> =>
    new Promise((resolve) => {
      stats.watches++;
      let gone = false;
      const query = {
        labelSelector: o.labelSelector,
        resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: o.timeoutSeconds,
      };
      o.cluster.watch
        .watch(
          path,
          query,
          (type: string, obj: Obj) => {
            if (type === 'ERROR') {
              if (obj?.code === 410) gone = true;
              return;
            }
            const rv = obj?.metadata?.resourceVersion;
            if (typeof rv === 'string' && rv) resourceVersion = rv;
            if (type === 'BOOKMARK') return;
            slim(obj);
            const name = obj?.metadata?.name;
            if (typeof name !== 'string') return;
            if (type === 'DELETED') cache.delete(name);
            else cache.set(name, obj);
            if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') emit(type, obj);
          },
          (err: unknown) => resolve(gone ? Object.assign(new Error('Gone'), { statusCode: 410 }) : err),
        )
        .then(
          (controller) => {
            abort = () => controller.abort();
            if (stopped) controller.abort();
          },
          (err: unknown) => resolve(err),
        );
    });

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      wakeSleep = () => {
        clearTimeout(t);
        resolve();
      };
    });

  const loop = async () => {
    let delay = o.backoff.initial;
    while (!stopped) {
      try {
        if (!resourceVersion) await list();
        if (!syncedOnce) {
          syncedOnce = true;
          resolveSynced();
        }
      } catch (error) {
        o.onError?.(error);
        if (!syncedOnce && statusCode(error) === 404 && o.resource !== 'pods') {
          // The API server does not serve this resource (its CRD or API group is not installed): nothing will
          // change by retrying, and a run waiting for this list would wait forever. Give up; a later run asks again.
          stopped = true;
          rejectSynced(error);
          o.onGiveUp?.(error);
          return;
        }
        if (!syncedOnce && (statusCode(error) === 403 || statusCode(error) === 401)) {
          // Without permission to list there is nothing to retry for: report it to whoever waits for the sync.
          rejectSynced(error);
        }
        o.logger.warn({ path, err: error instanceof Error ? error.message.split('\n')[0] : String(error), retryInMs: delay }, 'kubernetes list failed');
        await sleep(delay);
        delay = Math.min(o.backoff.max, delay * 2);
        stats.reconnects++;
        continue;
      }
      const startedAt = Date.now();
      const err = await watchOnce();
      abort = undefined;
      if (stopped) break;
      if (statusCode(err) === 410) {
        stats.relists410++;
        resourceVersion = '';
        delay = o.backoff.initial;
        continue;
      }
      if (err) {
        o.onError?.(err);
        o.logger.warn({ path, err: err instanceof Error ? err.message : String(err), retryInMs: delay }, 'kubernetes watch failed; reconnecting');
        await sleep(delay);
        delay = Math.min(o.backoff.max, delay * 2);
        stats.reconnects++;
        continue;
      }
      // A clean close (server timeout or a dropped stream): resume from the last resourceVersion at once, unless
      // the server keeps closing right away, which would otherwise spin.
      stats.reconnects++;
      if (Date.now() - startedAt < 1000) {
        await sleep(delay);
        delay = Math.min(o.backoff.max, delay * 2);
      } else delay = o.backoff.initial;
    }
  };
  void loop();

  return {
    synced,
    stats,
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    objects: () => cache.values(),
    stop() {
      stopped = true;
      abort?.();
      wakeSleep?.();
    },
  };
}
