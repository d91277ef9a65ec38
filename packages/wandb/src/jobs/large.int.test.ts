import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import type { LaunchSpec, ResolvedCodeJob } from '@launch/core';
import { artifactIdString, createWandbTestServer } from '@launch/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { captureLogger } from '../test-support/capture-logger.js';
import { createWandbJobResolver } from './resolver.js';

const MiB = 1024 * 1024;
const SIZE = 200 * MiB;
const dir = mkdtempSync(join(tmpdir(), 'wandb-jobs-large-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `bytes` of varied content (so a wrong offset would change the digest) without holding it in memory. */
async function writeLargeFile(path: string, bytes: number): Promise<string> {
  const out = createWriteStream(path);
  const hash = createHash('md5');
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < bytes / MiB; i++) {
    block.fill(i % 251);
    block.writeUInt32LE(i, 0);
    hash.update(block);
    if (!out.write(block)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  out.end();
  await finished(out);
  return hash.digest('base64');
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
