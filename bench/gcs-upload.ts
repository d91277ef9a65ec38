/**
 * Streamed upload of a build context to GCS: `createGcsContextStore(...).upload()` (a resumable upload
 * in 16 MiB chunks, each `PUT` with `Content-Range` and answered 308 until the last) of one generated
 * file (default 1 GiB; `--size <MiB>`) to the GCS JSON API test server on 127.0.0.1, with an access
 * token from the OAuth2 test server (service-account key file, JWT grant). Figures: throughput (MiB/s,
 * file size / upload time) and peak RSS growth of the uploading process (target ≤ 64 MiB). The upload
 * runs in a child process (`node --import tsx`, the package's source) timed from inside; after a
 * warm-up (verify, and a two-chunk upload) that loads the libraries' code, its RSS is the baseline, and
 * growth is `maxRSS` (getrusage) minus that baseline. The test servers run in this process and write
 * to a temp dir, so their disk writes are part of the measured time.
 *
 *   npx tsx bench/gcs-upload.ts [--size <MiB>] [--chunk-size <MiB>]
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

export const GCS_UPLOAD_TARGETS = { rssGrowthMiB: 64 };
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

/** The child: warm up (load the libraries, verify the bucket, one two-chunk upload), then upload the file once. */
async function child(file: string, endpoint: string, keyFile: string, chunkSizeMiB: number): Promise<void> {
  const { createGcpEnvironment, createGcsContextStore } = await import('../packages/cloud-gcp/src/index.js');
  const noop = () => {};
  const logger = { debug: noop, info: noop, warn: noop, error: noop };
  const environment = createGcpEnvironment({ region: 'us-central1', keyFile, env: {} });
  const store = createGcsContextStore({ uri: `gs://${BUCKET}/bench`, environment, apiEndpoint: endpoint, chunkSizeMiB });
  await store.verify({ logger });
  const warm = join(tmpdir(), `gcs-upload-warm-${process.pid}`);
  writeFileSync(warm, '');
  truncateSync(warm, chunkSizeMiB * MiB + 1); // sparse: two chunks, nothing allocated here for it
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

function runChild(args: string[]): Promise<ChildFigures> {
  return new Promise((resolve, reject) => {
    // No developer credentials reach the child: ADC variables are dropped and the metadata server is never probed.
    const env: Record<string, string | undefined> = { ...process.env, METADATA_SERVER_DETECTION: 'none' };
    for (const k of ['GOOGLE_APPLICATION_CREDENTIALS', 'GOOGLE_CLOUD_PROJECT', 'GCLOUD_PROJECT']) delete env[k];
    const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', here, '--child', ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
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
  const chunkSizeMiB = flag(argv, '--chunk-size', 16);
  const { startGoogleTestServers } = await import('../packages/cloud-gcp/src/test-support/google.js');
  const dir = mkdtempSync(join(tmpdir(), 'bench-gcs-upload-'));
  const servers = await startGoogleTestServers();
  servers.gcs.addBucket(BUCKET);
  try {
    const file = join(dir, 'context.bin');
    process.stderr.write(`gcs-upload: generating ${sizeMiB} MiB…\n`);
    await generateFile(file, sizeMiB);
    process.stderr.write(`gcs-upload: uploading to the GCS test server at ${servers.gcs.endpoint} (${chunkSizeMiB} MiB chunks)…\n`);
    const figures = await runChild([file, servers.gcs.endpoint, servers.key.path, String(chunkSizeMiB)]);
    const throughputMiBs = round(sizeMiB / (figures.uploadMs / 1000), 1);
    const rssGrowthMiB = round(figures.maxRssMiB - figures.baselineRssMiB, 1);
    const result = {
      sizeMiB,
      chunkSizeMiB,
      chunks: servers.gcs.count('PUT chunk'),
      uploadSeconds: round(figures.uploadMs / 1000, 2),
      throughputMiBs,
      baselineRssMiB: round(figures.baselineRssMiB, 1),
      peakRssMiB: round(figures.maxRssMiB, 1),
      rssGrowthMiB,
      targets: GCS_UPLOAD_TARGETS,
      met: { rssGrowth: rssGrowthMiB <= GCS_UPLOAD_TARGETS.rssGrowthMiB },
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.stdout.write(
      `${formatTable([
        ['figure', 'value', 'target', ''],
        [`upload of ${sizeMiB} MiB`, `${result.uploadSeconds} s`, '', ''],
        ['throughput MiB/s', throughputMiBs, '', ''],
        ['peak RSS growth MiB', rssGrowthMiB, `≤ ${GCS_UPLOAD_TARGETS.rssGrowthMiB}`, verdict(result.met.rssGrowth)],
      ])}\n`,
    );
    writeResult('gcs-upload', result);
    return result;
  } finally {
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, async () => {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--child');
  if (at !== -1) await child(argv[at + 1]!, argv[at + 2]!, argv[at + 3]!, Number(argv[at + 4]));
  else await run(argv);
});
