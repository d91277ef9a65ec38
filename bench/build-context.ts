/**
 * Build context packing: `packContext` from @launch/builders (deterministic tar, sha256 of the tar
 * stream and gzip level 1 in one streamed pass) against `tar -c | gzip -1` on the same generated
 * tree in the same run, and the packer's peak RSS growth.
 *
 * The tree (default 256 MiB; `--size 1024` for the 1 GiB) is half many small files (1–64
 * KiB of text-like content, 100 to a directory) and half four large files of binary-like content;
 * it is generated from a fixed seed, so every run packs the same bytes. The page cache is warmed
 * with one `tar -c` before timing. Each side then runs twice, alternating, and the faster run
 * counts. Ours runs in a child process (`node --import tsx`, the same code as the built package)
 * timed from inside, after start-up; its RSS growth is `maxRSS` (getrusage) minus the RSS after
 * loading. The baseline is `sh -c 'tar -c -C <tree> . | gzip -1 > /dev/null'`, timed around the
 * spawn. Throughput ratio = baseline time / our time (≥ 0.7 is the target).
 *
 *   npx tsx bench/build-context.ts [--size <MiB>] [--keep]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { repoRoot, runIfMain, writeResult } from './lib/results.js';
import { round } from './lib/stats.js';
import { formatTable, verdict } from './lib/table.js';

export const BUILD_CONTEXT_TARGETS = { throughputRatio: 0.7, rssGrowthMiB: 64 };
const MiB = 1024 * 1024;
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

/** Writes the tree; returns its file count and bytes. */
export function generateTree(dir: string, totalBytes: number, seed = 42): { files: number; bytes: number } {
  const next = prng(seed);
  // Pools the files are cut from: text-like (compresses ~3x) and binary-like (random walk of float32s, compresses little).
  const words = [
    'import',
    'torch',
    'def',
    'return',
    'self',
    'model',
    'train',
    'loss',
    'epoch',
    'batch',
    'config',
    '=',
    '(',
    ')',
    ':',
    '\n',
    '    ',
    'wandb',
    'log',
    'lr',
  ];
  const text = Buffer.alloc(8 * MiB);
  for (let i = 0; i < text.length; ) {
    const word = (next() % 3 === 0 ? String(next() % 10_000) : words[next() % words.length]!) + ' ';
    i += text.write(word, i);
  }
  const binary = Buffer.alloc(8 * MiB);
  let walk = 0;
  for (let i = 0; i + 4 <= binary.length; i += 4) {
    walk += ((next() % 2001) - 1000) / 1000;
    binary.writeFloatLE(walk, i);
  }
  const slice = (pool: Buffer, size: number) => {
    const start = next() % (pool.length - size);
    return pool.subarray(start, start + size);
  };
  let bytes = 0;
  let files = 0;
  const smallBudget = Math.floor(totalBytes / 2);
  for (let d = 0; bytes < smallBudget; d++) {
    const sub = join(dir, 'src', `pkg${String(d).padStart(4, '0')}`);
    mkdirSync(sub, { recursive: true });
    for (let f = 0; f < 100 && bytes < smallBudget; f++) {
      const size = Math.min(smallBudget - bytes, Math.round(1024 * 64 ** ((next() % 1000) / 1000))); // 1–64 KiB, log-uniform
      writeFileSync(join(sub, `module${f}.py`), slice(text, Math.max(size, 1)));
      bytes += Math.max(size, 1);
      files++;
    }
  }
  mkdirSync(join(dir, 'weights'), { recursive: true });
  const large = Math.floor((totalBytes - bytes) / 4);
  for (let i = 0; i < 4; i++) {
    const size = i === 3 ? totalBytes - bytes : large;
    const parts: Buffer[] = [];
    for (let left = size; left > 0; left -= Math.min(left, 4 * MiB)) parts.push(slice(binary, Math.min(left, 4 * MiB)));
    writeFileSync(join(dir, 'weights', `shard${i}.bin`), Buffer.concat(parts));
    bytes += size;
    files++;
  }
  return { files, bytes };
}

function timeCommand(command: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr}`))));
  });
}

interface ChildFigures {
  ms: number;
  rssBeforeMiB: number;
  maxRssMiB: number;
  tarBytes: number;
  gzBytes: number;
  entries: number;
  sha256: string;
}

function runChild(dir: string, mode: 'pack' | 'hash'): Promise<ChildFigures> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', here, '--child', dir, mode], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`packer child exited ${code}: ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!) as ChildFigures);
    });
  });
}

/** The child: pack (or only hash) the tree once, report time and memory. */
async function child(dir: string, mode: string): Promise<void> {
  const { packContext, hashContext, emptyDockerIgnore } = await import('@launch/builders');
  const layout = { root: dir, mount: '', ignore: emptyDockerIgnore, files: new Map<string, Buffer>(), maxEntries: 10_000_000 };
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  let gzBytes = 0;
  let digest;
  if (mode === 'hash') digest = await hashContext(layout);
  else {
    const packed = packContext(layout, { gzipLevel: 1 });
    await pipeline(packed.stream, new Writable({ write: (c: Buffer, _e, cb) => ((gzBytes += c.length), cb()) }));
    digest = await packed.digest;
  }
  const ms = performance.now() - t0;
  const figures: ChildFigures = {
    ms,
    rssBeforeMiB: rssBefore / MiB,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    tarBytes: digest.tarBytes,
    gzBytes,
    entries: digest.entries,
    sha256: digest.sha256,
  };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

function sizeArg(argv: string[]): number {
  const i = argv.indexOf('--size');
  const raw = i === -1 ? (process.env.BENCH_BUILD_CONTEXT_MIB ?? '256') : argv[i + 1];
  const match = /^(\d+(?:\.\d+)?)([MmGg]?)i?[Bb]?$/.exec(raw ?? '');
  if (!match) throw new Error(`--size: expected MiB such as 256 or 1G, found ${JSON.stringify(raw)}`);
  return Math.round(Number(match[1]) * (/[Gg]/.test(match[2]!) ? 1024 : 1) * MiB);
}

/** Runs the benchmark; prints a table and writes `bench/results/build-context.json`. */
export async function run(argv: string[] = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const totalBytes = sizeArg(argv);
  const dir = mkdtempSync(join(tmpdir(), 'launch-bench-context-'));
  try {
    const g0 = performance.now();
    const tree = generateTree(dir, totalBytes);
    const generateMs = performance.now() - g0;
    await timeCommand('sh', ['-c', `tar -c -C '${dir}' . > /dev/null`]); // warm the page cache
    const baseline: number[] = [];
    const ours: ChildFigures[] = [];
    for (let round_ = 0; round_ < 2; round_++) {
      baseline.push(await timeCommand('sh', ['-c', `tar -c -C '${dir}' . | gzip -1 > /dev/null`]));
      ours.push(await runChild(dir, 'pack'));
    }
    const hashOnly = await runChild(dir, 'hash');
    const best = ours.reduce((a, b) => (b.ms < a.ms ? b : a));
    const baselineMs = Math.min(...baseline);
    const mibs = (ms: number) => round(tree.bytes / MiB / (ms / 1000), 1);
    const figures = {
      treeMiB: round(tree.bytes / MiB, 1),
      files: tree.files,
      entries: best.entries,
      generateMs: Math.round(generateMs),
      tarGzipMs: baseline.map(Math.round),
      packMs: ours.map((o) => Math.round(o.ms)),
      hashOnlyMs: Math.round(hashOnly.ms),
      tarGzipMiBps: mibs(baselineMs),
      packMiBps: mibs(best.ms),
      hashOnlyMiBps: mibs(hashOnly.ms),
      throughputRatio: round(baselineMs / best.ms, 2),
      rssGrowthMiB: round(Math.max(...ours.map((o) => o.maxRssMiB - o.rssBeforeMiB)), 1),
      rssBeforeMiB: round(best.rssBeforeMiB, 1),
      compressedMiB: round(best.gzBytes / MiB, 1),
      sameDigestEveryRun: new Set([...ours, hashOnly].map((o) => o.sha256)).size === 1,
    };
    const ratioMet = figures.throughputRatio >= BUILD_CONTEXT_TARGETS.throughputRatio;
    const rssMet = figures.rssGrowthMiB <= BUILD_CONTEXT_TARGETS.rssGrowthMiB;
    process.stdout.write(
      [
        `Build context: ${figures.treeMiB} MiB, ${figures.files} files (half small files, half 4 large), packed to ${figures.compressedMiB} MiB`,
        formatTable([
          ['', 'value', 'target', ''],
          ['tar -c | gzip -1 MiB/s (best of 2)', figures.tarGzipMiBps, '', ''],
          ['packContext (tar+sha256+gzip -1) MiB/s (best of 2)', figures.packMiBps, '', ''],
          ['throughput ratio (ours / tar|gzip)', figures.throughputRatio, `≥ ${BUILD_CONTEXT_TARGETS.throughputRatio}`, verdict(ratioMet)],
          ['hashContext (tar+sha256, no gzip) MiB/s', figures.hashOnlyMiBps, '', ''],
          ['peak RSS growth MiB', figures.rssGrowthMiB, `≤ ${BUILD_CONTEXT_TARGETS.rssGrowthMiB}`, verdict(rssMet)],
          ['same digest in every run', figures.sameDigestEveryRun ? 'yes' : 'NO', '', ''],
        ]),
        '',
      ].join('\n'),
    );
    const result = {
      ...figures,
      targets: BUILD_CONTEXT_TARGETS,
      summary: [
        {
          benchmark: 'build-context',
          figure: `pack+hash throughput vs tar | gzip -1 (${figures.treeMiB} MiB)`,
          value: String(figures.throughputRatio),
          target: `≥ ${BUILD_CONTEXT_TARGETS.throughputRatio}`,
          met: ratioMet,
        },
        {
          benchmark: 'build-context',
          figure: 'packer peak RSS growth',
          value: `${figures.rssGrowthMiB} MiB`,
          target: `≤ ${BUILD_CONTEXT_TARGETS.rssGrowthMiB} MiB`,
          met: rssMet,
        },
      ],
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    writeResult('build-context', result);
    return result;
  } finally {
    if (argv.includes('--keep')) process.stderr.write(`tree kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, async () => {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--child');
  if (at !== -1) await child(argv[at + 1]!, argv[at + 2] ?? 'pack');
  else await run(argv);
});
