/**
 * Does having the cloud packages installed cost an agent that uses no cloud anything? Issue 11's
 * target: "agent idle RSS with no cloud configured unchanged (±5 %) by these packages being installed".
 *
 * Method. The binary as built (`node examples/agent/dist/cli.js run --state-dir <tmp>`, no config, the
 * embedded queue, no cloud) is started in three variants, interleaved round by round so that machine
 * load hits each alike:
 *
 * - `installed`: the packages and their SDKs are installed and resolvable, as in this workspace.
 * - `unreachable`: the same, but a module resolve hook makes every import of `@launch/cloud-*`,
 *   `@aws-sdk/*`, `@google-cloud/*`, `google-auth-library` and `@azure/*` fail with
 *   `ERR_MODULE_NOT_FOUND`, exactly as if they were not installed (each attempt is recorded).
 * - `eager` (reference): like `installed`, plus a preload that imports the three cloud packages and
 *   their SDK entry modules before the agent starts: what start-up would cost if the binary loaded them.
 *
 * All three run with the same resolve hook (passing through, blocking, or passing through) and the
 * same `--import` preload, so the hook's own thread and memory are in every figure alike. The hook
 * also writes every ESM URL it resolves, and the preload writes the CommonJS module cache (every
 * `require`d file) when the agent exits, so each run says which modules it loaded.
 *
 * Two answers, one exact, one measured: (1) the module lists: `installed` loads no cloud module and
 * the same number of modules as `unreachable`, and `unreachable` records no blocked import: then the
 * packages being installed changes nothing the process loads, and (2) RSS 10 s after the agent
 * announced itself (VmRSS, /proc), median over the rounds, `installed` against `unreachable` (target
 * within ±5 %). `eager` shows the size a leak would have, i.e. that (2) could see one.
 *
 * A run without the hook (`plain`, the user's exact command) gives the headline idle RSS.
 *
 *   npx tsx bench/cloud-idle-rss.ts              (after `pnpm build`; BENCH_ROUNDS=5, BENCH_IDLE_MS=10000)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { cliPath } from './lib/agent-process.js';
import { sleep } from './lib/clock.js';
import { rssBytes } from './lib/proc.js';
import { repoRoot, runIfMain, writeResult } from './lib/results.js';
import { round } from './lib/stats.js';
import { formatTable, verdict } from './lib/table.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 10_000);
export const CLOUD_IDLE_TARGET = { rssDeltaPercent: 5 };

/** A specifier or resolved URL that belongs to a cloud package or a cloud SDK. */
const CLOUD_SPECIFIER = '^(?:@launch/cloud-|@aws-sdk/|@smithy/|@google-cloud/|google-auth-library|gcp-metadata|@azure/)';
const CLOUD_PATH = /[\\/](?:cloud-aws|cloud-gcp|cloud-azure)[\\/]|@aws-sdk|@smithy|@google-cloud|google-auth-library|gcp-metadata|@azure[\\/+]/;

type Variant = 'plain' | 'installed' | 'unreachable' | 'eager';

const HOOKS = `
import { appendFileSync } from 'node:fs';
let mode = 'trace';
let trace = '';
const cloud = new RegExp(${JSON.stringify(CLOUD_SPECIFIER)});
export async function initialize(data) { mode = data.mode; trace = data.trace; }
export async function resolve(specifier, context, next) {
  if (mode === 'block' && cloud.test(specifier)) {
    appendFileSync(trace, 'BLOCKED ' + specifier + '\\n');
    const error = new Error("Cannot find package '" + specifier + "' (made unreachable by bench/cloud-idle-rss.ts)");
    error.code = 'ERR_MODULE_NOT_FOUND';
    throw error;
  }
  const r = await next(specifier, context);
  appendFileSync(trace, 'ESM ' + r.url + '\\n');
  return r;
}
`;

/** The eager reference's modules: the three packages' ESM builds and their SDKs' entry modules. */
function eagerModules(): string[] {
  const fromPackage = (pkg: string, specifiers: string[]) => {
    const require = createRequire(join(repoRoot, 'packages', pkg, 'package.json'));
    return specifiers.map((s) => pathToFileURL(require.resolve(s)).href);
  };
  return [
    ...['cloud-aws', 'cloud-gcp', 'cloud-azure'].map((p) => pathToFileURL(join(repoRoot, 'packages', p, 'dist', 'index.js')).href),
    ...fromPackage('cloud-aws', ['@aws-sdk/client-s3', '@aws-sdk/client-ecr', '@aws-sdk/client-sts', '@aws-sdk/credential-providers']),
    ...fromPackage('cloud-gcp', ['@google-cloud/storage', 'google-auth-library']),
    ...fromPackage('cloud-azure', ['@azure/storage-blob', '@azure/identity']),
  ];
}

/** Writes the resolve hook and a preload registering it (and dumping the CommonJS cache at exit); returns the preload's URL for `--import`. */
function writePreload(dir: string, mode: 'block' | 'trace', trace: string, cjs: string, eager: string[]): string {
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(hooks, HOOKS);
  const preload = join(dir, `preload-${mode}-${eager.length}.mjs`);
  writeFileSync(
    preload,
    [
      "import { register, createRequire } from 'node:module';",
      "import { writeFileSync } from 'node:fs';",
      `register(${JSON.stringify(pathToFileURL(hooks).href)}, { data: { mode: ${JSON.stringify(mode)}, trace: ${JSON.stringify(trace)} } });`,
      'const require = createRequire(import.meta.url);',
      `process.on('exit', () => writeFileSync(${JSON.stringify(cjs)}, Object.keys(require.cache).join('\\n')));`,
      ...eager.map((u) => `await import(${JSON.stringify(u)});`),
      '',
    ].join('\n'),
  );
  return pathToFileURL(preload).href;
}

/**
 * The control: with the blocking hook, an agent whose config does need a cloud (an ECR destination)
 * must record a blocked import and refuse the config. If it did not, the hook would not be blocking
 * anything and the `unreachable` variant would prove nothing.
 */
async function blockControl(dir: string): Promise<{ blocked: string[]; exitCode: number | null }> {
  const trace = join(dir, 'control.trace');
  writeFileSync(trace, '');
  const cfg = join(dir, 'ecr.yaml');
  writeFileSync(
    cfg,
    'environment:\n  type: aws\n  region: us-east-1\nbuilder:\n  type: docker\n  destination: 123456789012.dkr.ecr.us-east-1.amazonaws.com/launch\n',
  );
  const stateDir = mkdtempSync(join(dir, 'state-'));
  const preload = writePreload(dir, 'block', trace, join(dir, 'control.cjs'), []);
  const child = spawn(process.execPath, ['--import', preload, cliPath, 'run', '-c', cfg, '--state-dir', stateDir, '--exit-when-idle'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, NO_COLOR: '1', DOCKER_HOST: 'unix:///nonexistent/docker.sock' },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const exitCode = await new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  clearTimeout(timer);
  const blocked = readFileSync(trace, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('BLOCKED '))
    .map((l) => l.slice(8));
  return { blocked, exitCode };
}

interface RunFigures {
  variant: Variant;
  round: number;
  /** VmRSS IDLE_MS after the agent announced itself (MiB). */
  rssMiB: number;
  /** Highest VmRSS sampled each second over the window (MiB). */
  rssMaxMiB: number;
  esmModules?: number;
  cjsModules?: number;
  cloudModules?: string[];
  blocked?: string[];
}

async function runOnce(variant: Variant, roundNo: number, dir: string): Promise<RunFigures> {
  const stateDir = mkdtempSync(join(dir, 'state-'));
  const trace = join(dir, `${variant}-${roundNo}.trace`);
  const cjs = join(dir, `${variant}-${roundNo}.cjs`);
  writeFileSync(trace, '');
  const args =
    variant === 'plain'
      ? []
      : ['--import', writePreload(dir, variant === 'unreachable' ? 'block' : 'trace', trace, cjs, variant === 'eager' ? eagerModules() : [])];
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', HOME: dir };
  for (const key of Object.keys(env)) if (/^(?:WANDB_|AWS_|GOOGLE_|AZURE_|KUBECONFIG)/.test(key)) delete env[key];
  const child = spawn(process.execPath, [...args, cliPath, 'run', '--state-dir', stateDir], { cwd: repoRoot, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const output: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${variant}: the agent did not start in 60 s:\n${output.join('\n')}`)), 60_000);
      child.once('exit', (code) => reject(new Error(`${variant}: the agent exited (${code}):\n${output.join('\n')}`)));
      createInterface(child.stderr!).on('line', (line) => {
        output.push(line);
        if (/registered/.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const pid = child.pid!;
    const samples: number[] = [];
    const t0 = performance.now();
    for (let elapsed = 0; elapsed < IDLE_MS; elapsed = performance.now() - t0) {
      await sleep(Math.min(1000, IDLE_MS - elapsed));
      samples.push(rssBytes(pid));
    }
    const mib = (b: number) => round(b / 1024 / 1024, 1);
    child.removeAllListeners('exit');
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await exited;
    const figures: RunFigures = { variant, round: roundNo, rssMiB: mib(samples[samples.length - 1]!), rssMaxMiB: mib(Math.max(...samples)) };
    if (variant !== 'plain') {
      const lines = readFileSync(trace, 'utf8').split('\n').filter(Boolean);
      const esm = new Set(lines.filter((l) => l.startsWith('ESM ')).map((l) => l.slice(4)));
      let cjsFiles: string[] = [];
      try {
        cjsFiles = readFileSync(cjs, 'utf8').split('\n').filter(Boolean);
      } catch {
        throw new Error(`${variant}: the agent exited without writing its module cache:\n${output.join('\n')}`);
      }
      figures.esmModules = esm.size;
      figures.cjsModules = cjsFiles.length;
      figures.cloudModules = [...esm, ...cjsFiles].filter((u) => CLOUD_PATH.test(u));
      figures.blocked = lines.filter((l) => l.startsWith('BLOCKED ')).map((l) => l.slice(8));
    }
    return figures;
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(stateDir, { recursive: true, force: true });
  }
}

const median = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Runs the benchmark; prints a table and writes `bench/results/cloud-idle-rss.json`. */
export async function run(): Promise<Record<string, unknown>> {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'launch-bench-cloud-idle-'));
  const variants: Variant[] = ['plain', 'installed', 'unreachable', 'eager'];
  const runs: RunFigures[] = [];
  let control: { blocked: string[]; exitCode: number | null };
  try {
    control = await blockControl(dir);
    for (let r = 1; r <= ROUNDS; r++) {
      // Rotate the order each round so that no variant always runs first (or right after another).
      const order = variants.map((_, i) => variants[(i + r - 1) % variants.length]!);
      for (const v of order) runs.push(await runOnce(v, r, dir));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const of = (v: Variant) => runs.filter((x) => x.variant === v);
  const summary = Object.fromEntries(
    variants.map((v) => {
      const xs = of(v);
      return [
        v,
        {
          rssMiB: { median: round(median(xs.map((x) => x.rssMiB)), 1), min: Math.min(...xs.map((x) => x.rssMiB)), max: Math.max(...xs.map((x) => x.rssMiB)) },
          ...(v === 'plain'
            ? {}
            : {
                esmModules: median(xs.map((x) => x.esmModules!)),
                cjsModules: median(xs.map((x) => x.cjsModules!)),
                cloudModules: Math.max(...xs.map((x) => x.cloudModules!.length)),
                blockedImports: [...new Set(xs.flatMap((x) => x.blocked!))],
              }),
        },
      ];
    }),
  ) as Record<
    Variant,
    { rssMiB: { median: number; min: number; max: number }; esmModules?: number; cjsModules?: number; cloudModules?: number; blockedImports?: string[] }
  >;
  const installed = summary.installed;
  const unreachable = summary.unreachable;
  const deltaPercent = round(((installed.rssMiB.median - unreachable.rssMiB.median) / unreachable.rssMiB.median) * 100, 1);
  const eagerPercent = round(((summary.eager.rssMiB.median - unreachable.rssMiB.median) / unreachable.rssMiB.median) * 100, 1);
  const controlOk = control.blocked.includes('@launch/cloud-aws') && control.exitCode === 2;
  const sameModules =
    controlOk &&
    installed.cloudModules === 0 &&
    unreachable.blockedImports!.length === 0 &&
    installed.esmModules === unreachable.esmModules &&
    installed.cjsModules === unreachable.cjsModules;
  const rssMet = Math.abs(deltaPercent) <= CLOUD_IDLE_TARGET.rssDeltaPercent;

  process.stdout.write(
    [
      `Cloud packages and an idle agent with no cloud: the binary on the embedded queue, RSS ${IDLE_MS / 1000} s after registration, median of ${ROUNDS} rounds`,
      formatTable([
        ['variant', 'RSS MiB (median)', 'min–max', 'ESM modules', 'CJS modules', 'cloud modules', 'blocked imports'],
        ...variants.map((v) => {
          const s = summary[v];
          return [
            v,
            s.rssMiB.median,
            `${s.rssMiB.min}–${s.rssMiB.max}`,
            s.esmModules ?? '-',
            s.cjsModules ?? '-',
            s.cloudModules ?? '-',
            s.blockedImports ? s.blockedImports.length : '-',
          ];
        }),
      ]),
      '',
      formatTable([
        ['', 'value', 'target', ''],
        ['control: the hook blocks @launch/cloud-aws for an ECR config (exit 2)', controlOk ? 'yes' : 'no', 'yes', verdict(controlOk)],
        ['same modules loaded, installed vs unreachable', sameModules ? 'yes' : 'no', 'yes', verdict(sameModules)],
        ['RSS installed vs unreachable', `${deltaPercent > 0 ? '+' : ''}${deltaPercent} %`, `±${CLOUD_IDLE_TARGET.rssDeltaPercent} %`, verdict(rssMet)],
        ['RSS eager (reference) vs unreachable', `${eagerPercent > 0 ? '+' : ''}${eagerPercent} %`, '', ''],
      ]),
      '',
    ].join('\n'),
  );
  const result = {
    description: 'idle agent binary with no cloud configured: do the installed cloud packages change what it loads or its RSS?',
    method:
      `node [--import preload] examples/agent/dist/cli.js run --state-dir <tmp>, no config, HOME empty; variants: plain (no hook), installed (resolve hook passing through), unreachable (hook failing every @launch/cloud-*, @aws-sdk/*, @google-cloud/*, google-auth-library, @azure/* import with ERR_MODULE_NOT_FOUND), eager (installed plus a preload importing the three cloud packages and their SDK entry modules); ` +
      `RSS = /proc/<pid>/status VmRSS ${IDLE_MS / 1000} s after the agent logged "registered"; ${ROUNDS} rounds, variant order rotated each round; modules = ESM URLs the hook resolved + the CommonJS module cache at exit`,
    idleMs: IDLE_MS,
    rounds: ROUNDS,
    variants: summary,
    rssDeltaPercent: deltaPercent,
    eagerDeltaPercent: eagerPercent,
    control,
    sameModules,
    targets: CLOUD_IDLE_TARGET,
    met: { control: controlOk, sameModules, rss: rssMet },
    runs,
    durationMs: Date.now() - started,
  };
  writeResult('cloud-idle-rss', result);
  return {
    ...result,
    summary: [
      {
        benchmark: 'cloud-idle-rss',
        figure: 'cloud modules loaded with no cloud configured',
        value: String(installed.cloudModules),
        target: '0',
        met: sameModules,
      },
      {
        benchmark: 'cloud-idle-rss',
        figure: 'idle RSS, packages installed vs unreachable',
        value: `${deltaPercent} %`,
        target: `±${CLOUD_IDLE_TARGET.rssDeltaPercent} %`,
        met: rssMet,
      },
    ],
  };
}

runIfMain(import.meta.url, run);
