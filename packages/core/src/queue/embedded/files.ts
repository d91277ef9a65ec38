import { readFileSync } from 'node:fs';
import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomId } from './layout.js';

/** Node's errno, when the error has one. */
export function errno(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? ((error as { code?: string }).code ?? undefined) : undefined;
}

/** Creates directories once per process (mkdir -p), remembering the ones it made. */
export function createDirCache(): (dir: string) => Promise<void> {
  const made = new Set<string>();
  return async (dir) => {
    if (made.has(dir)) return;
    await mkdir(dir, { recursive: true });
    made.add(dir);
  };
}

/**
 * Writes `data` to `target` atomically: a temp file in `tmpDir` (same file system) renamed over the
 * target, so readers and crashes see the old or the new file, never half of one.
 */
export async function writeAtomic(tmpDir: string, target: string, data: string, options: { fsync: boolean }): Promise<void> {
  const tmp = join(tmpDir, `${randomId(16)}.tmp`);
  const handle = await open(tmp, 'wx');
  try {
    await handle.writeFile(data, 'utf8');
    if (options.fsync) await handle.datasync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, target);
  } catch (error) {
    await unlink(tmp).catch(() => {});
    throw error;
  }
  if (options.fsync) await fsyncDir(dirname(target));
}

/** Makes a rename or create in `dir` durable. Some file systems refuse to fsync a directory: ignore. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // best effort
  } finally {
    await handle?.close().catch(() => {});
  }
}

export type ReadResult = { ok: true; text: string; ctimeMs: number } | { ok: false; problem: string; missing?: boolean };

/** Reads a file of at most `maxBytes`, reporting a problem instead of throwing. */
export async function readLimited(path: string, maxBytes: number): Promise<ReadResult> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if (errno(error) === 'ENOENT') return { ok: false, problem: 'the file is gone', missing: true };
    return { ok: false, problem: `cannot open it (${(error as Error).message})` };
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return { ok: false, problem: 'it is not a regular file' };
    if (stat.size > maxBytes) return { ok: false, problem: `it is ${stat.size} bytes, over the ${maxBytes}-byte limit` };
    const text = await handle.readFile('utf8');
    return { ok: true, text, ctimeMs: stat.ctimeMs };
  } catch (error) {
    return { ok: false, problem: `cannot read it (${(error as Error).message})` };
  } finally {
    await handle.close().catch(() => {});
  }
}

/** Lists a directory; a missing one is empty. Names starting with `.` are skipped. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => !n.startsWith('.'));
  } catch (error) {
    if (errno(error) === 'ENOENT') return [];
    throw error;
  }
}

/**
 * Whether a process with this pid runs on this host (EPERM means it exists but is not ours).
 * A zombie counts as gone: without an init that reaps orphans (a bare container), a killed
 * agent stays a zombie and would otherwise hold its items until the lease is long expired.
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (errno(error) !== 'EPERM') return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/** Maps with at most `limit` calls in flight, so thousands of items never exhaust file descriptors. */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}
