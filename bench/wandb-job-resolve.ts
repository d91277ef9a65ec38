/**
 * W&B job resolution: an `artifact` job whose code artifact is 100 MiB (default; `--size <MiB>`),
 * resolved through the W&B test server (real HTTP, signed-URL downloads) by `createWandbJobResolver`
 * from @launch/wandb: the cold resolution (job artifact + manifest + every file streamed to disk and
 * MD5-checked), then 20 cached resolutions of the same version (GraphQL look-ups only; the server's
 * download count must not move), and the resolver's peak RSS growth while downloading.
 *
 * The code artifact is 4 large binary files (80 % of the bytes) and about 500 small text files,
 * generated from a fixed seed on disk; the server streams them from there. The resolver runs in a
 * child process (`node --import tsx`, the built package) so its memory is measured apart from the
 * server's: RSS growth is `maxRSS` (getrusage) minus the RSS after resolving a one-file job first
 * (which loads every code path). The machine's load average is in the result: on a shared 2-core
 * machine the GraphQL round trips of a cached resolution vary by an order of magnitude with it.
 *
 *   npx tsx bench/wandb-job-resolve.ts [--size <MiB>]
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { repoRoot, runIfMain, writeResult } from './lib/results.js';
import { distribution, round } from './lib/stats.js';
import { formatTable, verdict } from './lib/table.js';

export const WANDB_JOB_RESOLVE_TARGETS = { cachedMs: 50, rssGrowthMiB: 64 };
const MiB = 1024 * 1024;
const CACHED_RUNS = 20;
const here = fileURLToPath(import.meta.url);

/** xorshift32: the same bytes on every machine. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

async function writeStreamed(path: string, bytes: number, next: () => number): Promise<void> {
  const out = createWriteStream(path);
  const block = Buffer.alloc(MiB);
  for (let left = bytes; left > 0; left -= MiB) {
    for (let i = 0; i + 4 <= block.length; i += 4) block.writeUInt32LE(next(), i);
    if (!out.write(left >= MiB ? block : block.subarray(0, left))) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  out.end();
  await finished(out);
}

/** Writes the code tree; returns path → file on disk. */
async function generateCode(dir: string, totalBytes: number): Promise<Record<string, { path: string }>> {
  const next = prng(7);
  const files: Record<string, { path: string }> = {};
  const smallBudget = Math.floor(totalBytes / 5);
  let bytes = 0;
  for (let i = 0; bytes < smallBudget; i++) {
    const rel = `src/pkg${Math.floor(i / 50)}/module${i % 50}.py`;
    const size = Math.min(smallBudget - bytes, 16 * 1024 + (next() % (64 * 1024)));
    mkdirSync(join(dir, 'src', `pkg${Math.floor(i / 50)}`), { recursive: true });
    await writeStreamed(join(dir, rel), size, next);
    files[rel] = { path: join(dir, rel) };
    bytes += size;
  }
  mkdirSync(join(dir, 'weights'), { recursive: true });
  const large = Math.floor((totalBytes - bytes) / 4);
  for (let i = 0; i < 4; i++) {
    const size = i === 3 ? totalBytes - bytes : large;
    const rel = `weights/shard${i}.bin`;
    await writeStreamed(join(dir, rel), size, next);
    files[rel] = { path: join(dir, rel) };
    bytes += size;
  }
  return files;
}

interface ChildFigures {
  coldMs: number;
  cachedMs: number[];
  rssBeforeMiB: number;
  maxRssMiB: number;
  sampledPeakRssMiB: number;
  sameDir: boolean;
  progressLines: number;
}

function runChild(args: string[]): Promise<ChildFigures> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', here, '--child', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`resolver child exited ${code}: ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!) as ChildFigures);
    });
  });
}

/** The child: one cold resolution, then cached ones, reporting times and memory. */
async function child(url: string, apiKey: string, cacheDir: string, job: string, warmJob: string): Promise<void> {
  const { createWandbJobResolver } = await import('@launch/wandb');
  const resolver = createWandbJobResolver({ apiKey, baseUrl: url, cacheDir, env: {} });
  const logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => logger } as never;
  const request = (onProgress?: (l: string) => void) => ({ job, spec: {} as never, runId: 'bench', itemId: 'bench', ...(onProgress ? { onProgress } : {}) });
  // Load every code path (GraphQL, manifest, signed-URL download, cache) with a small job first, so the
  // growth measured below is the large download's.
  await resolver.resolve({ ...request(), job: warmJob }, { logger });
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  let lines = 0;
  const t0 = performance.now();
  const cold = (await resolver.resolve(
    request(() => lines++),
    { logger },
  )) as { codeDir: string };
  const coldMs = performance.now() - t0;
  clearInterval(sampler);
  const maxRss = process.resourceUsage().maxRSS * 1024;
  const cachedMs: number[] = [];
  let sameDir = true;
  for (let i = 0; i < CACHED_RUNS; i++) {
    const t = performance.now();
    const again = (await resolver.resolve(request(), { logger })) as { codeDir: string };
    cachedMs.push(performance.now() - t);
    sameDir &&= again.codeDir === cold.codeDir;
  }
  await resolver.close();
  const figures: ChildFigures = {
    coldMs,
    cachedMs,
    rssBeforeMiB: rssBefore / MiB,
    maxRssMiB: maxRss / MiB,
    sampledPeakRssMiB: peak / MiB,
    sameDir,
    progressLines: lines,
  };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

function sizeArg(argv: string[]): number {
  const i = argv.indexOf('--size');
  const raw = i === -1 ? '100' : argv[i + 1];
  if (!/^\d+$/.test(raw ?? '')) throw new Error(`--size: expected MiB such as 100, found ${JSON.stringify(raw)}`);
  return Number(raw) * MiB;
}

/** Runs the benchmark; prints a table and writes `bench/results/wandb-job-resolve.json`. */
export async function run(argv: string[] = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { createWandbTestServer, artifactIdString } = await import('@launch/testkit');
  const totalBytes = sizeArg(argv);
  const dir = mkdtempSync(join(tmpdir(), 'launch-bench-job-'));
  const server = await createWandbTestServer();
  try {
    const files = await generateCode(join(dir, 'code'), totalBytes);
    const code = await server.publishCode({ entity: 'tester', project: 'bench', name: 'source-bench-train.py', files });
    const bigJob = await server.publishJob({
      entity: 'tester',
      project: 'bench',
      name: 'job-source-bench-train.py',
      job: { source_type: 'artifact', source: { artifact: artifactIdString(code), entrypoint: ['python', 'src/pkg0/module0.py'] }, runtime: '3.11' },
    });
    const warm = await server.publishCode({ entity: 'tester', project: 'bench', name: 'source-warm', files: { 'train.py': "print('warm')\n" } });
    await server.publishJob({
      entity: 'tester',
      project: 'bench',
      name: 'job-warm',
      job: { source_type: 'artifact', source: { artifact: artifactIdString(warm), entrypoint: ['python', 'train.py'] } },
    });
    const job = 'tester/bench/job-source-bench-train.py:latest';
    const cacheDir = join(dir, 'cache');
    const r = await runChild([server.url, server.apiKey, cacheDir, job, 'tester/bench/job-warm:latest']);
    // The child ran both phases; the server's record tells whether the cached phase downloaded anything.
    const fileDownloads = server.countFileDownloads(code.id);
    const manifestDownloads = server.downloads.filter((d) => d.kind === 'manifest' && (d.artifactId === code.id || d.artifactId === bigJob.id)).length;
    const cached = distribution(r.cachedMs, 2);
    const figures = {
      artifactMiB: round(totalBytes / MiB, 1),
      files: Object.keys(files).length,
      coldMs: Math.round(r.coldMs),
      coldMiBps: round(totalBytes / MiB / (r.coldMs / 1000), 1),
      cachedMs: cached,
      fileDownloadsCold: Object.keys(files).length,
      fileDownloadsTotal: fileDownloads,
      /** Manifests of the job and its code artifact fetched in all runs: 2 when the cached runs fetched none. */
      manifestDownloadsTotal: manifestDownloads,
      downloadsWhenCached: fileDownloads - Object.keys(files).length,
      sameCodeDirEveryRun: r.sameDir,
      progressLines: r.progressLines,
      rssBeforeMiB: round(r.rssBeforeMiB, 1),
      rssGrowthMiB: round(r.maxRssMiB - r.rssBeforeMiB, 1),
      sampledRssGrowthMiB: round(r.sampledPeakRssMiB - r.rssBeforeMiB, 1),
    };
    const cachedMet = cached.p50 <= WANDB_JOB_RESOLVE_TARGETS.cachedMs && figures.downloadsWhenCached === 0 && manifestDownloads === 2;
    const rssMet = figures.rssGrowthMiB <= WANDB_JOB_RESOLVE_TARGETS.rssGrowthMiB;
    process.stdout.write(
      [
        `W&B job resolution: artifact job, ${figures.artifactMiB} MiB code artifact in ${figures.files} files, through the W&B test server`,
        formatTable([
          ['', 'value', 'target', ''],
          ['cold resolution ms', figures.coldMs, '', ''],
          ['cold download MiB/s', figures.coldMiBps, '', ''],
          [`cached resolution ms p50 (n=${cached.n})`, cached.p50, `≤ ${WANDB_JOB_RESOLVE_TARGETS.cachedMs}`, verdict(cachedMet)],
          ['cached resolution ms p90 / max', `${cached.p90} / ${cached.max}`, '', ''],
          ['file downloads in cached runs', figures.downloadsWhenCached, '0', verdict(figures.downloadsWhenCached === 0)],
          ['peak RSS growth MiB (maxRSS)', figures.rssGrowthMiB, `≤ ${WANDB_JOB_RESOLVE_TARGETS.rssGrowthMiB}`, verdict(rssMet)],
          ['peak RSS growth MiB (sampled every 5 ms)', figures.sampledRssGrowthMiB, '', ''],
          ['same code dir every run', figures.sameCodeDirEveryRun ? 'yes' : 'NO', '', ''],
        ]),
        '',
      ].join('\n'),
    );
    const result = {
      ...figures,
      targets: WANDB_JOB_RESOLVE_TARGETS,
      summary: [
        {
          benchmark: 'wandb-job-resolve',
          figure: `cold resolution, ${figures.artifactMiB} MiB code artifact`,
          value: `${figures.coldMs} ms`,
          target: '',
          met: undefined,
        },
        {
          benchmark: 'wandb-job-resolve',
          figure: 'cached resolution p50, no download',
          value: `${cached.p50} ms, ${figures.downloadsWhenCached} downloads`,
          target: `≤ ${WANDB_JOB_RESOLVE_TARGETS.cachedMs} ms, 0`,
          met: cachedMet,
        },
        {
          benchmark: 'wandb-job-resolve',
          figure: 'peak RSS growth while downloading',
          value: `${figures.rssGrowthMiB} MiB`,
          target: `≤ ${WANDB_JOB_RESOLVE_TARGETS.rssGrowthMiB} MiB`,
          met: rssMet,
        },
      ],
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    writeResult('wandb-job-resolve', result);
    return result;
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, async () => {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--child');
  if (at !== -1) await child(argv[at + 1]!, argv[at + 2]!, argv[at + 3]!, argv[at + 4]!, argv[at + 5]!);
  else await run(argv);
});
