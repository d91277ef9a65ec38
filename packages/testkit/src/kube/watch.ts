import type { ServerResponse } from 'node:http';
import { apiVersionOf, resourceKey, type ResourceInfo } from './resources.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { status } from './status.js';
import type { Change, Store } from './store.js';
import type { KubeObject } from './types.js';

export interface WatchParams {
  resource: ResourceInfo;
  namespace: string | undefined;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  timeoutSeconds?: number;
  allowWatchBookmarks: boolean;
  bookmarkIntervalMs: number;
}

export interface WatchStream {
  /** End the stream abruptly (socket destroyed), as a dropped connection would. */
  destroy(): void;
  /** End the stream cleanly (the server closing at timeoutSeconds). */
  end(): void;
}

/**
 * Serves one watch: a chunked stream of JSON lines `{type, object}`. Starting from a resourceVersion replays the
 * history after it; a compacted one gets an ERROR event carrying a 410 Expired Status, then the stream ends,
 * which is exactly what kube-apiserver does.
 */
export function serveWatch(store: Store, params: WatchParams, res: ServerResponse, onEnd: () => void): WatchStream {
  const { resource: r, namespace } = params;
  // Selectors were validated by the caller; parsing again here is cheap.
  const labels = parseLabelSelector(params.labelSelector);
  const fields = parseFieldSelector(params.fieldSelector, r.plural);
  const key = resourceKey(r);
  const inScope = (o: KubeObject) => namespace === undefined || !r.namespaced || o.metadata.namespace === namespace;
  const matches = (o: KubeObject | undefined) => o !== undefined && inScope(o) && labels(o.metadata.labels) && fields(o);

  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  res.socket?.setNoDelay(true);
  res.flushHeaders();

  let ended = false;
  let lastRv = store.revision();
  const timers: NodeJS.Timeout[] = [];
  let unsubscribe: () => void = () => {};

  const send = (type: string, object: unknown) => {
    if (!ended) res.write(`${JSON.stringify({ type, object })}\n`);
  };
  const bookmark = () => send('BOOKMARK', { kind: r.kind, apiVersion: apiVersionOf(r), metadata: { resourceVersion: String(lastRv) } });

  const cleanup = () => {
    if (ended) return;
    ended = true;
    unsubscribe();
    for (const t of timers) clearTimeout(t);
    onEnd();
  };
  res.on('close', cleanup);

  const deliver = (change: Change) => {
    if (resourceKey(change.resource) !== key) return;
    lastRv = change.rv;
    const now = change.type !== 'DELETED' && matches(change.object);
    const before = change.type !== 'ADDED' && matches(change.previous);
    if (change.type === 'ADDED' && now) send('ADDED', change.object);
    else if (change.type === 'DELETED' && (before || matches(change.object))) send('DELETED', change.object);
    else if (change.type === 'MODIFIED') {
      // A watch with a selector sees objects enter and leave its view as ADDED and DELETED.
      if (now && before) send('MODIFIED', change.object);
      else if (now) send('ADDED', change.object);
      else if (before) send('DELETED', change.object);
    }
  };

  const rvParam = params.resourceVersion;
  if (rvParam && rvParam !== '0') {
    const from = Number(rvParam);
    if (!Number.isFinite(from) || from < store.compactedRevision()) {
      send('ERROR', status(410, 'Expired', `too old resource version: ${rvParam} (${store.compactedRevision() + 1})`));
      ended = true;
      res.end();
      onEnd();
      return { destroy: () => res.destroy(), end: () => undefined };
    }
    for (const change of store.changesSince(r, from)) deliver(change);
  } else {
    // No resourceVersion: synthetic ADDED events for the current state, then changes.
    for (const obj of store.list(r, namespace)) if (matches(obj)) send('ADDED', obj);
  }
  lastRv = store.revision();
  unsubscribe = store.onChange(deliver);

  if (params.allowWatchBookmarks && params.bookmarkIntervalMs > 0) {
    const tick = () => {
      bookmark();
      timers.push(setTimeout(tick, params.bookmarkIntervalMs).unref());
    };
    timers.push(setTimeout(tick, params.bookmarkIntervalMs).unref());
  }
  const end = () => {
    if (ended) return;
    // Since Kubernetes 1.27 the server sends a last bookmark before closing at the timeout.
    if (params.allowWatchBookmarks) bookmark();
    res.end();
    cleanup();
  };
  if (params.timeoutSeconds !== undefined && params.timeoutSeconds > 0) {
    timers.push(setTimeout(end, params.timeoutSeconds * 1000).unref());
  }
  return {
    destroy() {
      res.socket?.destroy();
      res.destroy();
      cleanup();
    },
    end,
  };
}
