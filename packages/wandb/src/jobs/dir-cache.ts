import { createHash, randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger, type Logger } from '@launch/core';

/** A cached directory, held (never evicted) until `release()`. */
export interface CacheLease {
  dir: string;
  /** Whether this call built it (false: it was cached, or another call or process built it). */
  built: boolean;
  /** Lets the entry be evicted again (idempotent). */
  release(): void;
}

export interface DirCache {
  /**
   * The directory cached under `kind`/`key`, built by `build` into a fresh staging directory when
   * missing and then renamed into place (so a directory that exists is complete). Concurrent calls
   * for the same key in this process share one build; another process building the same key at
   * the same time loses the rename and its copy is dropped. The entry is held from the call on:
   * eviction leaves it alone until the lease is released (or the build fails).
   */
  ensure(kind: string, key: string, build: (staging: string) => Promise<void>): Promise<CacheLease>;
  /** Bytes of the entries this cache knows (after the first `ensure`, every entry under the root). */
  size(): number;
  /** Settles once evictions started so far are done (for tests and shutdown). */
  idle(): Promise<void>;
}

export interface DirCacheOptions {
  /** Evict least recently used entries that nothing holds once the cache is larger than this. Default: no limit. */
  maxBytes?: number;
  logger?: Logger;
}

/** A short, path-safe name for a cache key (keys may hold server-given strings). */
export function cacheName(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 40);
}

const ENTRY = /^[0-9a-f]{40}$/;

/** Apparent size of a directory tree: files and symbolic links by their length (links are not followed). */
export async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  const pending = [dir];
  while (pending.length > 0) {
    const current = pending.pop()!;
    let entries: Dirent[];
    try {
      entries = await readdir(current, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      const path = join(current, e.name);
      if (e.isDirectory()) pending.push(path);
      else
        total += await lstat(path).then(
          (s) => s.size,
          () => 0,
        );
    }
  }
  return total;
}

interface Entry {
  size: number;
  lastUsed: number;
}

/**
 * Cached directories under `root/<kind>/<hash>`, built once and renamed into place. With `maxBytes`, least
 * recently used entries are removed when the cache grows past it, except entries held by a lease (a resolution
 * in flight, or a run that has not released its entry). Last use is kept in memory and as the entry's mtime, so
 * the order survives a restart. Eviction is safe against resolutions in this process: an entry is held the
 * moment `ensure` is called, and an `ensure` of an entry being evicted waits for the removal and builds it
 * again. Processes sharing `root` do not see each other's leases.
 */
export function createDirCache(root: string, options: DirCacheOptions = {}): DirCache {
  const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
  const logger = options.logger ?? silentLogger;
  const inFlight = new Map<string, Promise<{ dir: string; built: boolean }>>();
  const holds = new Map<string, number>();
  const evicting = new Map<string, Promise<void>>();
  const index = new Map<string, Entry>();
  let indexed: Promise<void> | undefined;
  let chain: Promise<void> = Promise.resolve();
  let lastStamp = 0;
  const tmp = join(root, 'tmp');

  const exists = (p: string) =>
    stat(p).then(
      (s) => s.isDirectory(),
      () => false,
    );

  /** Every entry already under the root (from earlier runs or other processes), with its size and last use. */
  function loadIndex(): Promise<void> {
    indexed ??= (async () => {
      if (maxBytes === Number.POSITIVE_INFINITY) return;
      // Removals a crash interrupted (staging directories may belong to a live process: left alone).
      for (const name of await readdir(tmp).catch(() => [] as string[])) {
        if (name.startsWith('evict-')) await rm(join(tmp, name), { recursive: true, force: true }).catch(() => undefined);
      }
      for (const kind of await readdir(root).catch(() => [] as string[])) {
        if (kind === 'tmp') continue;
        for (const name of await readdir(join(root, kind)).catch(() => [] as string[])) {
          const dir = join(root, kind, name);
          if (!ENTRY.test(name) || index.has(dir)) continue;
          const info = await stat(dir).catch(() => undefined);
          if (!info?.isDirectory()) continue;
          index.set(dir, { size: await treeBytes(dir), lastUsed: info.mtimeMs });
        }
      }
    })();
    return indexed;
  }

  function hold(dir: string): () => void {
    holds.set(dir, (holds.get(dir) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (holds.get(dir) ?? 1) - 1;
      if (left > 0) holds.set(dir, left);
      else holds.delete(dir);
      if (left === 0) scheduleEviction();
    };
  }

  /** Marks an entry used now, in memory and on disk (its mtime), so LRU order survives a restart. */
  async function touch(dir: string, size?: number): Promise<void> {
    if (maxBytes === Number.POSITIVE_INFINITY) return;
    // Strictly increasing, so two uses in one millisecond keep their order.
    const now = (lastStamp = Math.max(Date.now(), lastStamp + 0.001));
    const known = index.get(dir);
    index.set(dir, { size: size ?? known?.size ?? (await treeBytes(dir)), lastUsed: now });
    await utimes(dir, now / 1000, now / 1000).catch(() => undefined);
  }

  function total(): number {
    let sum = 0;
    for (const e of index.values()) sum += e.size;
    return sum;
  }

  function scheduleEviction(): void {
    if (maxBytes === Number.POSITIVE_INFINITY) return;
    chain = chain.then(evict).catch((error: unknown) => logger.warn({ err: error }, `evicting from the job cache ${root} failed`));
  }

  async function evict(): Promise<void> {
    await loadIndex();
    let bytes = total();
    if (bytes <= maxBytes) return;
    const candidates = [...index.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [dir, entry] of candidates) {
      if (bytes <= maxBytes) break;
      // Checked and marked in one synchronous step: an `ensure` either holds it first or waits for the removal.
      if (holds.has(dir) || inFlight.has(dir) || evicting.has(dir) || index.get(dir) !== entry) continue;
      const removal = remove(dir);
      evicting.set(dir, removal);
      index.delete(dir);
      bytes -= entry.size;
      try {
        await removal;
        logger.info({ dir, bytes: entry.size }, `evicted ${dir} from the job cache (${entry.size} bytes, least recently used)`);
      } finally {
        evicting.delete(dir);
      }
    }
  }

  /** Renames the entry out of place (atomic: it is there complete or not at all), then deletes it. */
  async function remove(dir: string): Promise<void> {
    await mkdir(tmp, { recursive: true });
    const trash = join(tmp, `evict-${randomBytes(8).toString('hex')}`);
    try {
      await rename(dir, trash);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    await rm(trash, { recursive: true, force: true });
  }

  async function buildOnce(dir: string, build: (staging: string) => Promise<void>): Promise<{ dir: string; built: boolean }> {
    await evicting.get(dir);
    await loadIndex();
    if (await exists(dir)) {
      await touch(dir);
      return { dir, built: false };
    }
    await mkdir(tmp, { recursive: true });
    const staging = join(tmp, `${randomBytes(8).toString('hex')}`);
    await mkdir(staging);
    try {
      await build(staging);
      const size = maxBytes === Number.POSITIVE_INFINITY ? 0 : await treeBytes(staging);
      await mkdir(join(dir, '..'), { recursive: true });
      try {
        await rename(staging, dir);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // Another process finished the same key first: its copy is as good as ours.
        if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await exists(dir))) {
          await rm(staging, { recursive: true, force: true });
          await touch(dir);
          return { dir, built: false };
        }
        throw error;
      }
      await touch(dir, size);
      return { dir, built: true };
    } catch (error) {
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      throw error;
    }
  }

  return {
    async ensure(kind, key, build) {
      const dir = join(root, kind, cacheName(key));
      const release = hold(dir);
      let running = inFlight.get(dir);
      if (!running) {
        running = buildOnce(dir, build).finally(() => inFlight.delete(dir));
        inFlight.set(dir, running);
      }
      let result: { dir: string; built: boolean };
      try {
        result = await running;
      } catch (error) {
        release();
        throw error;
      }
      if (result.built) scheduleEviction();
      return { ...result, release };
    },
    size: total,
    idle: async () => {
      // Evictions scheduled while waiting are waited for too.
      let seen: Promise<void> | undefined;
      while (seen !== chain) {
        seen = chain;
        await seen;
      }
    },
  };
}
