/**
 * Streamed upload of a build context to S3: `createS3ContextStore(...).upload()` (multipart, 8 MiB
 * parts read into 4 reused buffers, 4 parts at once) of one generated file (default 1 GiB; `--size <MiB>`) to s3rver
 * on 127.0.0.1. Figures: throughput (MiB/s, file size / upload time) and peak RSS growth of the
 * uploading process (target ≤ 64 MiB). The upload runs in a child process (`node --import tsx`, the
 * package's source) timed from inside; after a warm-up (verify, and a multipart upload of two
 * parts and a byte) that loads the SDK's code, its RSS is the baseline, and growth is `maxRSS` (getrusage) minus that baseline. s3rver runs in this process and
 * writes to a temp dir, so its disk writes are part of the measured time.
 *
 *   npx tsx bench/s3-upload.ts [--size <MiB>] [--part-size <MiB>] [--queue <n>]
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { repoRoot, runIfMain, writeResult } from './lib/results.js';
import { round } from './lib/stats.js';
import { formatTable, verdict } from './lib/table.js';

export const S3_UPLOAD_TARGETS = { rssGrowthMiB: 64 };
const MiB = 1024 * 1024;
const here = fileURLToPath(import.meta.url);
const BUCKET = 'bench-contexts';

function flag(argv: string[], name: string, fallback: number): number {
  const at = argv.indexOf(name);
  if (at === -1) return fallback;
  const value = Number(argv[at + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`bench: ${name} expects a positive number, found ${argv[at + 1]}`);
  return value;
}

/** Writes `mib` MiB of xorshift bytes (incompressible, like a gzipped context) in 1 MiB chunks. */
async function generateFile(path: string, mib: number): Promise<void> {
  let x = 42;
  async function* chunks() {
    for (let i = 0; i < mib; i++) {
      const chunk = Buffer.allocUnsafe(MiB);
      for (let o = 0; o < MiB; o += 4) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        chunk.writeInt32LE(x | 0, o);
      }
      yield chunk;
    }
  }
  await pipeline(Readable.from(chunks()), createWriteStream(path));
}

interface ChildFigures {
  uploadMs: number;
  baselineRssMiB: number;
  maxRssMiB: number;
  uri: string;
}

/** The child: warm up (load the SDK, verify the bucket, one small multipart upload), then upload the file once. */
async function child(file: string, endpoint: string, partSizeMiB: number, queueSize: number): Promise<void> {
  const { createS3ContextStore } = await import('../packages/cloud-aws/src/index.js');
  const noop = () => {};
  const logger = { debug: noop, info: noop, warn: noop, error: noop };
  const store = createS3ContextStore({
    uri: `s3://${BUCKET}/bench`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    endpoint,
    forcePathStyle: true,
    partSizeMiB,
    queueSize,
  });
  await store.verify({ logger });
  const warm = join(tmpdir(), `s3-upload-warm-${process.pid}`);
  // Two parts and a bit: the warm-up goes through the multipart path, so its code is loaded before the baseline.
  writeFileSync(warm, '');
  truncateSync(warm, partSizeMiB * 2 * MiB + 1); // sparse: nothing allocated here for it
  await store.upload(warm, 'warm.bin', { logger });
  rmSync(warm, { force: true });
  globalThis.gc?.();
  const baselineRssMiB = process.memoryUsage.rss() / MiB;
  const t0 = performance.now();
  const { uri } = await store.upload(file, 'context.bin', { logger });
  const uploadMs = performance.now() - t0;
  const figures: ChildFigures = { uploadMs, baselineRssMiB, maxRssMiB: process.resourceUsage().maxRSS / 1024, uri };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

function runChild(file: string, endpoint: string, partSizeMiB: number, queueSize: number): Promise<ChildFigures> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', here, '--child', file, endpoint, String(partSizeMiB), String(queueSize)], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (err += c.toString()));
    proc.on('error', reject);
    proc.on('exit', (code) => {
      if (code !== 0) reject(new Error(`upload child exited ${code}: ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').pop()!) as ChildFigures);
    });
  });
}

export async function run(argv: string[] = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const sizeMiB = flag(argv, '--size', 1024);
  const partSizeMiB = flag(argv, '--part-size', 8);
  const queueSize = flag(argv, '--queue', 4);
  const { startS3rver } = await import('../packages/cloud-aws/src/test-support/s3rver.js');
  const dir = mkdtempSync(join(tmpdir(), 'bench-s3-upload-'));
  const s3rver = await startS3rver([BUCKET]);
  try {
    const file = join(dir, 'context.bin');
    process.stderr.write(`s3-upload: generating ${sizeMiB} MiB…\n`);
    await generateFile(file, sizeMiB);
    process.stderr.write(`s3-upload: uploading to s3rver at ${s3rver.endpoint} (${partSizeMiB} MiB parts, ${queueSize} at once)…\n`);
    const figures = await runChild(file, s3rver.endpoint, partSizeMiB, queueSize);
    const throughputMiBs = round(sizeMiB / (figures.uploadMs / 1000), 1);
    const rssGrowthMiB = round(figures.maxRssMiB - figures.baselineRssMiB, 1);
    const result = {
      sizeMiB,
      partSizeMiB,
      queueSize,
      uploadSeconds: round(figures.uploadMs / 1000, 2),
      throughputMiBs,
      baselineRssMiB: round(figures.baselineRssMiB, 1),
      peakRssMiB: round(figures.maxRssMiB, 1),
      rssGrowthMiB,
      targets: S3_UPLOAD_TARGETS,
      met: { rssGrowth: rssGrowthMiB <= S3_UPLOAD_TARGETS.rssGrowthMiB },
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.stdout.write(
      `${formatTable([
        ['figure', 'value', 'target', ''],
        [`upload of ${sizeMiB} MiB`, `${result.uploadSeconds} s`, '', ''],
        ['throughput MiB/s', throughputMiBs, '', ''],
        ['peak RSS growth MiB', rssGrowthMiB, `≤ ${S3_UPLOAD_TARGETS.rssGrowthMiB}`, verdict(result.met.rssGrowth)],
      ])}\n`,
    );
    writeResult('s3-upload', result);
    return result;
  } finally {
    await s3rver.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, async () => {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--child');
  if (at !== -1) await child(argv[at + 1]!, argv[at + 2]!, Number(argv[at + 3]), Number(argv[at + 4]));
  else await run(argv);
});
