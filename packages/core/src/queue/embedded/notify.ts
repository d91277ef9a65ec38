import { mkdirSync, statfsSync, watch as fsWatch } from 'node:fs';
import type { Logger } from '../../logger.js';

/**
 * Wakes subscribers when work may have arrived: `fs.watch` on each served queue's `queued/` directory
 * (so enqueues from other processes are seen at once) and direct calls for enqueues in this process.
 * A directory without a trustworthy watch (the watch could not start or failed, or the directory is on
 * a network or FUSE file system, where changes made by other hosts raise no event) is polled instead:
 * subscribers are woken every `pollIntervalMs` while any served directory is in that state, and not at
 * all while every one is watched, so an idle agent on a local disk is not woken every second. The
 * agent's own, slower poll (`capabilities.pollIntervalMs`) covers an event lost while watching.
 * Nothing here keeps the process alive.
 */
export interface Notifier {
  subscribe(listener: () => void): () => void;
  /** Starts watching a queue's `queued/` directory (now, or when someone subscribes). */
  watchDir(key: string, dir: string): void;
  /** Wakes the subscribers on the next turn of the event loop (coalesced). */
  notify(): void;
  /** Whether subscribers are being woken by the fallback poll (some directory is not reliably watched). */
  polling(): boolean;
  close(): void;
}

/** What the notifier uses of an `fs.FSWatcher`. */
export interface WatchHandle {
  close(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

export interface NotifierOptions {
  pollIntervalMs: number;
  logger: Logger;
  /** `fs.watch` (tests inject a failing one). */
  watch?: (dir: string, listener: (event: string, file: string | null) => void) => WatchHandle;
  /** The file-system type (statfs `f_type`) of a directory, undefined when unknown (tests inject one). */
  fsType?: (dir: string) => number | undefined;
}

/**
 * statfs `f_type` of file systems whose changes by another host raise no inotify event (Linux magic
 * numbers): NFS, SMB/CIFS, SMB2, FUSE (sshfs, Docker Desktop's shares, virtiofs), 9p, Ceph, AFS, Coda,
 * NCP, GFS2, OCFS2, Lustre.
 */
const REMOTE_FS_TYPES: ReadonlySet<number> = new Set([
  0x6969, 0x517b, 0xff534d42, 0xfe534d42, 0x65735546, 0x01021997, 0x00c36400, 0x5346414f, 0x73757245, 0x564c, 0x01161970, 0x7461636f, 0x0bd00bd0,
]);

const defaultWatch: NonNullable<NotifierOptions['watch']> = (dir, listener) => fsWatch(dir, { persistent: false }, listener);

const defaultFsType = (dir: string): number | undefined => {
  try {
    return statfsSync(dir).type;
  } catch {
    return undefined;
  }
};

export function createNotifier(options: NotifierOptions): Notifier {
  const watch = options.watch ?? defaultWatch;
  const fsType = options.fsType ?? defaultFsType;
  const listeners = new Set<() => void>();
  const dirs = new Map<string, string>();
  const watchers = new Map<string, WatchHandle>();
  /** Served directories whose changes a watch may not report: while there is one, the poll runs. */
  const unwatched = new Set<string>();
  /** Directories whose watch problem was logged (a failing watch is retried on every pop: warn once). */
  const warned = new Set<string>();
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

  /** Runs the fallback poll exactly while someone listens and some served directory is not reliably watched. */
  const updatePoll = () => {
    const wanted = listeners.size > 0 && unwatched.size > 0;
    if (wanted && !timer) {
      timer = setInterval(notify, options.pollIntervalMs);
      timer.unref();
    } else if (!wanted && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };

  const warnOnce = (key: string, fields: Record<string, unknown>, message: string) => {
    if (warned.has(key)) return;
    warned.add(key);
    options.logger.warn(fields, message);
  };

  const startWatch = (key: string, dir: string) => {
    if (watchers.has(key)) return;
    unwatched.add(key);
    try {
      mkdirSync(dir, { recursive: true });
      const watcher = watch(dir, (_event, file) => {
        if (typeof file === 'string' && file.startsWith('.')) return;
        notify();
      });
      watcher.on('error', (error) => {
        // The poll takes over; a later subscribe or watchDir (every pop) retries the watch.
        options.logger.warn({ err: error, dir }, 'embedded queue: watching stopped, falling back to polling');
        watcher.close();
        if (watchers.get(key) === watcher) watchers.delete(key);
        unwatched.add(key);
        updatePoll();
        // Whatever happened between the last event and the failure is seen by the next poll, or now.
        notify();
      });
      watchers.set(key, watcher);
      const type = fsType(dir);
      if (type !== undefined && REMOTE_FS_TYPES.has(type)) {
        // Local writes still raise events; another host's do not.
        warnOnce(
          key,
          { dir, fsType: `0x${type.toString(16)}` },
          'embedded queue: the queue directory is on a network or FUSE file system; polling for items other hosts enqueue',
        );
      } else {
        unwatched.delete(key);
      }
    } catch (error) {
      warnOnce(key, { err: error, dir }, 'embedded queue: cannot watch, falling back to polling');
    } finally {
      updatePoll();
    }
  };

  const stopAll = () => {
    for (const w of watchers.values()) w.close();
    watchers.clear();
    unwatched.clear();
    updatePoll();
  };

  return {
    subscribe(listener) {
      listeners.add(listener);
      for (const [key, dir] of dirs) startWatch(key, dir);
      updatePoll();
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
    polling: () => timer !== undefined,
    close() {
      listeners.clear();
      stopAll();
    },
  };
}
