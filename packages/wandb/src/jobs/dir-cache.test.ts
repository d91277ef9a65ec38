import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { cacheName, createDirCache, treeBytes } from './dir-cache.js';

const root = mkdtempSync(join(tmpdir(), 'wandb-dir-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const fresh = () => mkdtempSync(join(root, 'cache-'));

/** A build writing `bytes` bytes of `key` (so a file read back names the entry it came from). */
const fill =
  (key: string, bytes = 1000) =>
  async (staging: string) => {
    mkdirSync(join(staging, 'sub'));
    await writeFile(join(staging, 'sub', 'data'), Buffer.alloc(bytes - key.length, 1));
    await writeFile(join(staging, 'key'), key);
  };
const entry = (dir: string, key: string) => join(dir, 'code', cacheName(key));

describe('job cache eviction', () => {
  it('measures entries by their files', async () => {
    const dir = fresh();
    await fill('abc', 5000)(dir);
    expect(await treeBytes(dir)).toBe(5000);
  });

  it('removes the least recently used entries once past the limit, and none while under it', async () => {
    const dir = fresh();
    const cache = createDirCache(dir, { maxBytes: 3000 });
    for (const key of ['a', 'b', 'c']) (await cache.ensure('code', key, fill(key))).release();
    await cache.idle();
    expect(cache.size()).toBe(3000);
    // A use of `a` makes `b` the least recently used.
    const again = await cache.ensure('code', 'a', () => Promise.reject(new Error('cached: not built again')));
    expect(again.built).toBe(false);
    again.release();
    (await cache.ensure('code', 'd', fill('d'))).release();
    await cache.idle();
    expect(['a', 'b', 'c', 'd'].filter((k) => existsSync(entry(dir, k)))).toEqual(['a', 'c', 'd']);
    expect(cache.size()).toBe(3000);
    // Nothing half-removed is left behind.
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  });

  it('never removes an entry that is held; the cache stays over the limit until it is released', async () => {
    const dir = fresh();
    const cache = createDirCache(dir, { maxBytes: 1500 });
    const a = await cache.ensure('code', 'a', fill('a'));
    const b = await cache.ensure('code', 'b', fill('b'));
    await cache.idle();
    expect(existsSync(a.dir) && existsSync(b.dir)).toBe(true);
    expect(cache.size()).toBe(2000);
    b.release();
    await cache.idle();
    // `a` is the older, but held: `b` goes.
    expect(existsSync(a.dir)).toBe(true);
    expect(existsSync(b.dir)).toBe(false);
    a.release();
    a.release(); // idempotent: a second release does not free another hold
    const a2 = await cache.ensure('code', 'a', fill('a'));
    (await cache.ensure('code', 'c', fill('c'))).release();
    await cache.idle();
    // Only `c` is free, so the newest entry goes rather than the held one.
    expect(existsSync(a2.dir)).toBe(true);
    expect(existsSync(entry(dir, 'c'))).toBe(false);
    a2.release();
  });

  it('is safe with concurrent resolutions: a held entry is always complete, an evicted one is built again', async () => {
    const dir = fresh();
    const cache = createDirCache(dir, { maxBytes: 2500 });
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4'];
    const builds = new Map<string, number>();
    let reads = 0;
    const worker = async (w: number) => {
      for (let i = 0; i < 25; i++) {
        const key = keys[(w * 7 + i * 3) % keys.length]!;
        const lease = await cache.ensure('code', key, async (staging) => {
          builds.set(key, (builds.get(key) ?? 0) + 1);
          await fill(key)(staging);
        });
        // While held, other workers' builds trigger evictions; this entry must stay whole.
        expect(await readFile(join(lease.dir, 'key'), 'utf8')).toBe(key);
        await tick();
        expect((await readFile(join(lease.dir, 'sub', 'data'))).length).toBe(1000 - key.length);
        reads++;
        lease.release();
      }
    };
    await Promise.all([0, 1, 2, 3, 4, 5].map(worker));
    await cache.idle();
    expect(reads).toBe(150);
    // More distinct entries were used than fit: some were evicted and built again.
    expect([...builds.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(keys.length);
    expect(cache.size()).toBeLessThanOrEqual(2500);
    const left = keys.filter((k) => existsSync(entry(dir, k)));
    expect(left.length).toBeGreaterThan(0);
    expect(left.length * 1000).toBe(cache.size());
  });

  it('finds entries left by an earlier process and evicts by their last use', async () => {
    const dir = fresh();
    const first = createDirCache(dir, { maxBytes: 10_000 });
    for (const key of ['old', 'new']) (await first.ensure('code', key, fill(key))).release();
    await first.idle();
    // `old` was last used an hour ago; an interrupted removal is left in tmp.
    const hourAgo = Date.now() / 1000 - 3600;
    utimesSync(entry(dir, 'old'), hourAgo, hourAgo);
    mkdirSync(join(dir, 'tmp', 'evict-0123456789abcdef'), { recursive: true });
    writeFileSync(join(dir, 'tmp', 'evict-0123456789abcdef', 'x'), 'x');

    const second = createDirCache(dir, { maxBytes: 2500 });
    (await second.ensure('jobs', 'j', fill('j'))).release();
    await second.idle();
    expect(existsSync(entry(dir, 'old'))).toBe(false);
    expect(existsSync(entry(dir, 'new'))).toBe(true);
    expect(existsSync(join(dir, 'jobs', cacheName('j')))).toBe(true);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    expect(second.size()).toBe(2000);
  });

  it('releases the hold of a build that fails', async () => {
    const dir = fresh();
    const cache = createDirCache(dir, { maxBytes: 1500 });
    const a = await cache.ensure('code', 'a', fill('a'));
    a.release();
    await expect(cache.ensure('code', 'b', () => Promise.reject(new Error('download failed')))).rejects.toThrow('download failed');
    (await cache.ensure('code', 'c', fill('c'))).release();
    await cache.idle();
    expect(existsSync(a.dir)).toBe(false);
    expect(cache.size()).toBe(1000);
  });
});
