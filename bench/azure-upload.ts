/**
 * Streamed upload of a build context to Azure Blob Storage: `createAzureBlobContextStore(...).upload()`
 * (block blob `uploadFile`: 8 MiB blocks streamed from file ranges, 4 at once) of one generated file (default 1 GiB; `--size <MiB>`)
 * to Azurite 3.35.0 on 127.0.0.1 with the dev account's key. Figures: throughput (MiB/s, file size / upload time)
 * and peak RSS growth of the uploading process (target ≤ 64 MiB). The upload runs in a child process
 * (`node --import tsx`, the package's source) timed from inside; after a warm-up (verify, and an upload
 * of two blocks and a byte) that loads the SDK's code, its RSS is the baseline, and growth is `maxRSS`
 * (getrusage) minus that baseline. Azurite runs as its own process writing to a temp dir, so its disk
 * writes are part of the measured time but not of the measured RSS.
 *
 *   npx tsx bench/azure-upload.ts [--size <MiB>] [--block-size <MiB>] [--concurrency <n>]
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

export const AZURE_UPLOAD_TARGETS = { rssGrowthMiB: 64 };
const MiB = 1024 * 1024;
const here = fileURLToPath(import.meta.url);
const CONTAINER = 'bench-contexts';

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

/** The child: warm up (load the SDK, verify the container, one small block upload), then upload the file once. */
async function child(file: string, serviceUrl: string, blockSizeMiB: number, concurrency: number): Promise<void> {
  const { createAzureBlobContextStore } = await import('../packages/cloud-azure/src/index.js');
  const { AZURITE_KEY } = await import('../packages/cloud-azure/src/test-support/azurite.js');
  const noop = () => {};
  const logger = { debug: noop, info: noop, warn: noop, error: noop };
  const store = createAzureBlobContextStore({ uri: `${serviceUrl}/${CONTAINER}/bench`, accountKey: AZURITE_KEY, blockSizeMiB, concurrency });
  await store.verify({ logger });
  const warm = join(tmpdir(), `azure-upload-warm-${process.pid}`);
  // Two blocks and a bit: the warm-up goes through the block path, so its code is loaded before the baseline.
  writeFileSync(warm, '');
  truncateSync(warm, blockSizeMiB * 2 * MiB + 1); // sparse: nothing allocated here for it
  await store.upload(warm, 'warm.bin', { logger });
  rmSync(warm, { force: true });
  globalThis.gc?.();
  const baselineRssMiB = process.memoryUsage.rss() / MiB;
  const t0 = performance.now();
  const { uri } = await store.upload(file, 'context.bin', { logger });
  const uploadMs = performance.now() - t0;
  const figures: ChildFigures = { uploadMs, baselineRssMiB, maxRssMiB: process.resourceUsage().maxRSS / 1024, uri };
  await store.delete(uri, { logger });
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

function runChild(file: string, serviceUrl: string, blockSizeMiB: number, concurrency: number): Promise<ChildFigures> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', here, '--child', file, serviceUrl, String(blockSizeMiB), String(concurrency)], {
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
  const blockSizeMiB = flag(argv, '--block-size', 8);
  const concurrency = flag(argv, '--concurrency', 4);
  const { startAzurite, createAzuriteContainer } = await import('../packages/cloud-azure/src/test-support/azurite.js');
  const dir = mkdtempSync(join(tmpdir(), 'bench-azure-upload-'));
  const azurite = await startAzurite();
  try {
    await createAzuriteContainer(azurite.serviceUrl, CONTAINER);
    const file = join(dir, 'context.bin');
    process.stderr.write(`azure-upload: generating ${sizeMiB} MiB…\n`);
    await generateFile(file, sizeMiB);
    process.stderr.write(`azure-upload: uploading to Azurite at ${azurite.endpoint} (${blockSizeMiB} MiB blocks, ${concurrency} at once)…\n`);
    const figures = await runChild(file, azurite.serviceUrl, blockSizeMiB, concurrency);
    const throughputMiBs = round(sizeMiB / (figures.uploadMs / 1000), 1);
    const rssGrowthMiB = round(figures.maxRssMiB - figures.baselineRssMiB, 1);
    const result = {
      sizeMiB,
      blockSizeMiB,
      concurrency,
      uploadSeconds: round(figures.uploadMs / 1000, 2),
      throughputMiBs,
      baselineRssMiB: round(figures.baselineRssMiB, 1),
      peakRssMiB: round(figures.maxRssMiB, 1),
      rssGrowthMiB,
      targets: AZURE_UPLOAD_TARGETS,
      met: { rssGrowth: rssGrowthMiB <= AZURE_UPLOAD_TARGETS.rssGrowthMiB },
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.stdout.write(
      `${formatTable([
        ['figure', 'value', 'target', ''],
        [`upload of ${sizeMiB} MiB`, `${result.uploadSeconds} s`, '', ''],
        ['throughput MiB/s', throughputMiBs, '', ''],
        ['peak RSS growth MiB', rssGrowthMiB, `≤ ${AZURE_UPLOAD_TARGETS.rssGrowthMiB}`, verdict(result.met.rssGrowth)],
      ])}\n`,
    );
    writeResult('azure-upload', result);
    return result;
  } finally {
    await azurite.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, async () => {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--child');
  if (at !== -1) await child(argv[at + 1]!, argv[at + 2]!, Number(argv[at + 3]), Number(argv[at + 4]));
  else await run(argv);
});
