import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface DirCache {
  /**
   * The directory cached under `kind`/`key`, built by `build` into a fresh staging directory when
   * missing and then renamed into place (so a directory that exists is complete). Concurrent calls
   * for the same key in this process share one build; another process building the same key at
   * the same time loses the rename and its copy is dropped.
   */
  ensure(kind: string, key: string, build: (staging: string) => Promise<void>): Promise<{ dir: string; built: boolean }>;
}

/** A short, path-safe name for a cache key (keys may hold server-given strings). */
export function cacheName(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 40);
}

export function createDirCache(root: string): DirCache {
  const inFlight = new Map<string, Promise<{ dir: string; built: boolean }>>();
  const exists = (p: string) =>
    stat(p).then(
      (s) => s.isDirectory(),
      () => false,
    );

  async function buildOnce(dir: string, build: (staging: string) => Promise<void>): Promise<{ dir: string; built: boolean }> {
    if (await exists(dir)) return { dir, built: false };
    const tmp = join(root, 'tmp');
    await mkdir(tmp, { recursive: true });
    const staging = join(tmp, `${randomBytes(8).toString('hex')}`);
    await mkdir(staging);
    try {
      await build(staging);
      await mkdir(join(dir, '..'), { recursive: true });
      try {
        await rename(staging, dir);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // Another process finished the same key first: its copy is as good as ours.
        if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await exists(dir))) {
          await rm(staging, { recursive: true, force: true });
          return { dir, built: false };
        }
        throw error;
      }
      return { dir, built: true };
    } catch (error) {
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      throw error;
    }
  }

  return {
    ensure(kind, key, build) {
      const dir = join(root, kind, cacheName(key));
      const running = inFlight.get(dir);
      if (running) return running;
      const p = buildOnce(dir, build).finally(() => inFlight.delete(dir));
      inFlight.set(dir, p);
      return p;
    },
  };
}
