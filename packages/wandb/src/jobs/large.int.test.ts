import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { LaunchSpec, ResolvedCodeJob } from '@launch/core';
import { artifactIdString, createWandbTestServer } from '@launch/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { captureLogger } from '../test-support/capture-logger.js';
import { createWandbJobResolver } from './resolver.js';

const MiB = 1024 * 1024;
const SIZE = 200 * MiB;
const GiB = 1024 * MiB;
const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'wandb-jobs-large-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `bytes` of varied content (so a wrong offset would change the digest) without holding it in memory. */
async function writeLargeFile(path: string, bytes: number, { hash: hashing = true } = {}): Promise<string> {
  const out = createWriteStream(path);
  const hash = createHash('md5');
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < bytes / MiB; i++) {
    block.fill(i % 251);
    block.writeUInt32LE(i, 0);
    if (hashing) hash.update(block);
    if (!out.write(block)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  out.end();
  await finished(out);
  return hash.digest('base64');
}

/** Checks `count` of the file's MiB blocks, spread over it, against what {@link writeLargeFile} wrote there. */
async function checkBlocks(path: string, bytes: number, count: number): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const block = Buffer.alloc(MiB);
    const expected = Buffer.alloc(MiB);
    const blocks = bytes / MiB;
    for (let k = 0; k < count; k++) {
      const i = Math.min(blocks - 1, Math.floor((k * blocks) / (count - 1)));
      await handle.read(block, 0, MiB, i * MiB);
      expected.fill(i % 251);
      expected.writeUInt32LE(i, 0);
      expect(block.equals(expected), `block ${i} of ${path}`).toBe(true);
    }
  } finally {
    await handle.close();
  }
}

async function md5OfFile(path: string): Promise<string> {
  const hash = createHash('md5');
  for await (const c of createReadStream(path)) hash.update(c as Buffer);
  return hash.digest('base64');
}

describe('W&B job resolver: a large code artifact', () => {
  it('streams a 200 MiB artifact to disk with bounded memory, surviving a cut-off download', async () => {
    const source = join(dir, 'weights.bin');
    const digest = await writeLargeFile(source, SIZE);
    const server = await createWandbTestServer();
    try {
      const code = await server.publishCode({
        entity: 'tester',
        project: 'proj',
        name: 'source-big',
        files: { 'train.py': "print('big')\n", 'weights.bin': { path: source } },
      });
      await server.publishJob({
        entity: 'tester',
        project: 'proj',
        name: 'job-big',
        job: { source_type: 'artifact', source: { artifact: artifactIdString(code), entrypoint: ['python', 'train.py'] } },
      });
      server.addDownloadFault({ kind: 'cut', artifactId: code.id, path: 'weights.bin' });
      const resolver = createWandbJobResolver({
        apiKey: server.apiKey,
        baseUrl: server.url,
        cacheDir: join(dir, 'cache'),
        retry: { baseDelayMs: 5, maxDelayMs: 20 },
        env: {},
      });
      global.gc?.();
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
      const lines: string[] = [];
      let job: ResolvedCodeJob;
      try {
        job = (await resolver.resolve(
          { job: 'tester/proj/job-big:latest', spec: {} as LaunchSpec, runId: 'r', itemId: 'i', onProgress: (l) => lines.push(l) },
          { logger: captureLogger() },
        )) as ResolvedCodeJob;
      } finally {
        clearInterval(sampler);
        await resolver.close();
      }
      const growthMiB = (peak - before) / MiB;
      expect(statSync(join(job.codeDir, 'weights.bin')).size).toBe(SIZE);
      expect(await md5OfFile(join(job.codeDir, 'weights.bin'))).toBe(digest);
      expect(server.downloads.filter((d) => d.path === 'weights.bin').map((d) => d.fault ?? 'ok')).toEqual(['cut', 'ok']);
      expect(lines.at(-1)).toBe('fetched 200.0 of 200.0 MiB of code artifact tester/proj/source-big:v0');
      // Loose: the file is never held in memory (server and client share this process). bench/wandb-job-resolve.ts measures it.
      expect(growthMiB).toBeLessThan(SIZE / MiB / 2);
    } finally {
      await server.close();
    }
  });
});

interface ChildResult {
  rssBefore: number;
  sampledPeak: number;
  maxRss: number;
  codeDir: string;
  lines: string[];
  ms: number;
}

/** Runs test-support/resolve-in-child.ts: the resolver in a process of its own, its memory measured apart from the server's. */
function resolveInChild(args: string[]): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', join(repoRoot, 'packages/wandb/src/test-support/resolve-in-child.ts'), ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`the resolver child exited with ${code}: ${err.slice(-2000)}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!) as ChildResult);
    });
  });
}

describe('W&B job resolver: a 2 GiB code artifact', () => {
  // The benchmark: peak RSS growth while downloading at most 64 MB.
  const MAX_GROWTH = 64 * 1000 * 1000;

  it('streams 2 GiB to disk with bounded memory, catching a corrupted copy by its digest', { timeout: 600_000 }, async () => {
    const big = mkdtempSync(join(dir, 'huge-'));
    const server = await createWandbTestServer();
    try {
      const source = join(big, 'model.bin');
      // Not hashed here: the server computes the manifest digest the resolver checks against.
      await writeLargeFile(source, 2 * GiB, { hash: false });
      const code = await server.publishCode({
        entity: 'tester',
        project: 'proj',
        name: 'source-huge',
        files: { 'train.py': "print('huge')\n", 'model.bin': { path: source } },
      });
      await server.publishJob({
        entity: 'tester',
        project: 'proj',
        name: 'job-huge',
        job: { source_type: 'artifact', source: { artifact: artifactIdString(code), entrypoint: ['python', 'train.py'] } },
      });
      const warm = await server.publishCode({ entity: 'tester', project: 'proj', name: 'source-warm', files: { 'train.py': "print('warm')\n" } });
      await server.publishJob({
        entity: 'tester',
        project: 'proj',
        name: 'job-warm',
        job: { source_type: 'artifact', source: { artifact: artifactIdString(warm), entrypoint: ['python', 'train.py'] } },
      });
      // The first copy has one byte changed: only the MD5 check over the whole stream can notice.
      server.addDownloadFault({ kind: 'corrupt', artifactId: code.id, path: 'model.bin' });
      const r = await resolveInChild([server.url, server.apiKey, join(big, 'cache'), 'tester/proj/job-warm:latest', 'tester/proj/job-huge:latest']);
      expect(server.downloads.filter((d) => d.path === 'model.bin').map((d) => d.fault ?? 'ok')).toEqual(['corrupt', 'ok']);
      expect(statSync(join(r.codeDir, 'model.bin')).size).toBe(2 * GiB);
      // The resolver accepted only a copy whose MD5 matched the manifest; the data also sits at the right offsets.
      await checkBlocks(join(r.codeDir, 'model.bin'), 2 * GiB, 64);
      expect(r.lines.at(-1)).toBe('fetched 2048.0 of 2048.0 MiB of code artifact tester/proj/source-huge:v0');
      const growth = Math.max(r.maxRss, r.sampledPeak) - r.rssBefore;
      expect(growth, `RSS grew by ${(growth / MiB).toFixed(1)} MiB while downloading (took ${Math.round(r.ms)} ms)`).toBeLessThanOrEqual(MAX_GROWTH);
    } finally {
      await server.close();
      rmSync(big, { recursive: true, force: true });
    }
  });
});
