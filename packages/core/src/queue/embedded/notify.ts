import { type FSWatcher, mkdirSync, watch } from 'node:fs';
import type { Logger } from '../../logger.js';

/**
 * Wakes subscribers when work may have arrived: `fs.watch` on each served queue's `queued/` directory
 * (so enqueues from other processes are seen at once), direct calls for enqueues in this process,
 * and a fallback poll in case the watcher misses events. Nothing here keeps the process alive.
 */
export interface Notifier {
  subscribe(listener: () => void): () => void;
  /** Starts watching a queue's `queued/` directory (now, or when someone subscribes). */
  watchDir(key: string, dir: string): void;
  /** Wakes the subscribers on the next turn of the event loop (coalesced). */
  notify(): void;
  close(): void;
}

export function createNotifier(options: { pollIntervalMs: number; logger: Logger }): Notifier {
  const listeners = new Set<() => void>();
  const dirs = new Map<string, string>();
  const watchers = new Map<string, FSWatcher>();
  let timer: NodeJS.Timeout | undefined;
  let pending = false;

  const fire = () => {
    pending = false;
    for (const listener of [...listeners]) {
      try {
        listener();
      } catch (error) {
        options.logger.error({ err: error }, 'embedded queue: a subscriber threw');
      }
    }
  };

  const notify = () => {
    if (pending || listeners.size === 0) return;
    pending = true;
    setImmediate(fire);
  };

  const startWatch = (key: string, dir: string) => {
    if (watchers.has(key)) return;
    try {
      mkdirSync(dir, { recursive: true });
      const watcher = watch(dir, { persistent: false }, (_event, file) => {
        if (typeof file === 'string' && file.startsWith('.')) return;
        notify();
      });
      watcher.on('error', (error) => {
        // The poll keeps working; a later subscribe or watchDir retries the watch.
        options.logger.warn({ err: error, dir }, 'embedded queue: watching stopped, falling back to polling');
        watcher.close();
        watchers.delete(key);
      });
      watchers.set(key, watcher);
    } catch (error) {
      options.logger.warn({ err: error, dir }, 'embedded queue: cannot watch, falling back to polling');
    }
  };

  const stopAll = () => {
    for (const w of watchers.values()) w.close();
    watchers.clear();
    if (timer) clearInterval(timer);
    timer = undefined;
  };

  return {
    subscribe(listener) {
      listeners.add(listener);
      for (const [key, dir] of dirs) startWatch(key, dir);
      if (!timer) {
        timer = setInterval(notify, options.pollIntervalMs);
        timer.unref();
      }
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) stopAll();
      };
    },
    watchDir(key, dir) {
      dirs.set(key, dir);
      if (listeners.size > 0) startWatch(key, dir);
    },
    notify,
    close() {
      listeners.clear();
      stopAll();
    },
  };
}
