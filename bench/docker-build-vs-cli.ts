/**
 * The docker builder (`createDockerBuilder` from @launch/builders: dockerode, the context packed and
 * hashed by the builder, the engine's classic builder) against `docker build` (the docker CLI of the
 * Debian docker.io package, `DOCKER_BUILDKIT=0`, so the same classic builder) on the same context and
 * Dockerfile, in the same run, against the same private dockerd.
 *
 * The context is a generated tree (`generateTree` from build-context.ts; default 16 MiB, `--size`)
 * plus a busybox-based Dockerfile with five steps (two RUNs that make a dependency layer, COPY of the
 * context, a RUN over the copied code, metadata). Before every build one file of the code changes, so
 * every build has a new source-hash tag and neither side can reuse the other's COPY layer.
 *
 * - **cold**: every image but the base image is removed before each build, so nothing is cached.
 * - **warm**: both sides have built the Dockerfile once (untimed); each timed build then reuses the
 *   dependency layers and rebuilds from COPY on, as after a code change.
 *
 * Rounds alternate which side goes first. Ours is timed around `builder.build()` in this process
 * (source-hash, exists check, pack + stream, build); the CLI around its spawn, as W&B's agent spawns
 * it. Ratio = median of ours / median of the CLI's (target ≤ 1.1).
 *
 * Also exports {@link startBenchDocker}, the private dockerd (and optionally a Distribution
 * registry) other benchmarks start from the test kit's helpers.
 *
 * `--gzip` adds a third side, ours with `gzipLevel: 1` (the context gzipped, as the builder sent it
 * to a local engine before this benchmark showed what that costs), reported without a target.
 *
 *   npx tsx bench/docker-build-vs-cli.ts [--rounds 5] [--size <MiB>] [--gzip]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { pidsMentioning, unmountAllUnder } from '../packages/testkit/src/services/daemon.js';
import { BASE_IMAGE, dockerUnavailableReason, loadBaseImage, startDockerEngine } from '../packages/testkit/src/services/docker-engine.js';
import { startReaper } from '../packages/testkit/src/services/reaper.js';
import { registryUnavailableReason, startRegistry } from '../packages/testkit/src/services/registry.js';
import { generateTree } from './build-context.js';
import { runIfMain, writeResult } from './lib/results.js';
import { percentile, round } from './lib/stats.js';
import { formatTable, verdict } from './lib/table.js';

export const DOCKER_BUILD_TARGETS = { ratio: 1.1 };
const MiB = 1024 * 1024;

/** A private dockerd (test kit helpers: own socket, data root, no bridge) with the busybox base image, and optionally a registry. */
export interface BenchDocker {
  root: string;
  socketPath: string;
  baseImage: string;
  /** `127.0.0.1:PORT` of an open Distribution registry, when asked for. */
  registry?: string;
  logDir: string;
  stop(): Promise<void>;
}

/**
 * Starts dockerd on a private socket under a fresh `/tmp/launch-bench-*` directory and loads
 * `localhost/busybox:test` made from busybox-static, with the test kit's reaper watching this
 * process: if it dies, the daemons are stopped and the directory removed. `stop()` does the same.
 */
export async function startBenchDocker(options: { registry?: boolean } = {}): Promise<BenchDocker> {
  const why = dockerUnavailableReason() ?? (options.registry ? registryUnavailableReason('none') : undefined);
  if (why) throw new Error(`bench: cannot start the private Docker engine: ${why}`);
  // Short path: containerd's sockets live below it (108-byte limit).
  const root = mkdtempSync('/tmp/launch-bench-');
  const logDir = join(root, 'logs');
  mkdirSync(logDir);
  const stopReaper = startReaper(root);
  const stops: Array<() => Promise<void>> = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.allSettled(stops.map((s) => s()));
    const stuck = await unmountAllUnder(root);
    for (const pid of pidsMentioning(root)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    stopReaper();
    if (stuck.length) process.stderr.write(`bench: could not unmount ${stuck.join(', ')}; leaving ${root}\n`);
    else rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    const [engine, registry] = await Promise.all([
      startDockerEngine(join(root, 'docker'), logDir).then((e) => (stops.push(e.stop), e)),
      options.registry ? startRegistry('bench', join(root, 'registry'), logDir, { kind: 'none' }).then((r) => (stops.push(r.stop), r)) : undefined,
    ]);
    await loadBaseImage(engine.socketPath, BASE_IMAGE);
    return { root, socketPath: engine.socketPath, baseImage: BASE_IMAGE, ...(registry ? { registry: registry.address } : {}), logDir, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The benchmark's Dockerfile: a dependency layer (cached when warm), then the code. */
export function benchDockerfile(baseImage: string): string {
  return [
    `FROM ${baseImage}`,
    'RUN mkdir -p /opt/deps && for i in $(seq 1 500); do echo "package $i" > /opt/deps/p$i.txt; done',
    'RUN dd if=/dev/urandom of=/opt/deps/native.so bs=1M count=8 2>/dev/null',
    'COPY . /app',
    'RUN find /app -type f | wc -l > /opt/files',
    'WORKDIR /app',
    'CMD ["cat", "/opt/files"]',
    '',
  ].join('\n');
}

function timeCli(args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('docker', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (c: Buffer) => (output = (output + c.toString()).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`docker ${args.join(' ')} exited ${code}:\n${output}`))));
  });
}

/** One Engine API call over the unix socket; resolves with the status and the parsed JSON body (if any). */
export function engineApi(socketPath: string, method: string, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Removes every image but the base image (intermediate images included), so the next build starts cold. */
async function removeAllButBase(socketPath: string, baseImage: string): Promise<void> {
  const base = (await engineApi(socketPath, 'GET', `/images/${encodeURIComponent(baseImage)}/json`)).body as { Id: string };
  for (let pass = 0; pass < 5; pass++) {
    const images = ((await engineApi(socketPath, 'GET', '/images/json?all=1')).body as Array<{ Id: string }>).filter((i) => i.Id !== base.Id);
    if (images.length === 0) return;
    for (const image of images) await engineApi(socketPath, 'DELETE', `/images/${image.Id}?force=1`);
  }
  throw new Error('bench: images were left after five removal passes');
}

const median = (values: number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

function numberArg(argv: string[], name: string, fallback: number): number {
  const i = argv.indexOf(name);
  if (i === -1) return fallback;
  const value = Number(argv[i + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}: expected a positive number, found ${JSON.stringify(argv[i + 1])}`);
  return value;
}

/** Runs the benchmark; prints a table and writes `bench/results/docker-build-vs-cli.json`. */
export async function run(argv: string[] = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const rounds = Math.round(numberArg(argv, '--rounds', Number(process.env.BENCH_DOCKER_BUILD_ROUNDS ?? 5)));
  const sizeMiB = numberArg(argv, '--size', Number(process.env.BENCH_DOCKER_BUILD_MIB ?? 16));
  const { createDockerBuilder } = await import('@launch/builders');
  const { silentLogger } = await import('@launch/core');
  const engine = await startBenchDocker();
  const work = mkdtempSync(join(tmpdir(), 'launch-bench-build-'));
  try {
    const context = join(work, 'context');
    mkdirSync(context);
    const tree = generateTree(context, Math.round(sizeMiB * MiB));
    writeFileSync(join(context, 'Dockerfile'), benchDockerfile(engine.baseImage));
    const dockerConfig = join(work, 'docker-config');
    mkdirSync(dockerConfig);
    const cliEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: work,
      DOCKER_HOST: `unix://${engine.socketPath}`,
      DOCKER_BUILDKIT: '0',
      DOCKER_CONFIG: dockerConfig,
    };
    const builder = createDockerBuilder({ socketPath: engine.socketPath });
    // --gzip: also ours with the context gzipped at level 1 (what the builder sent to a local engine before this benchmark).
    const withGzip = argv.includes('--gzip');
    const gzipBuilder = createDockerBuilder({ socketPath: engine.socketPath, gzipLevel: 1 });
    let version = 0;
    // A code change before every build: a new source-hash tag, and no COPY layer another build could share.
    const change = () => writeFileSync(join(context, 'src', 'version.py'), `VERSION = ${++version}\n`);
    const spec = { resource: 'local-container', overrides: { dockerfile: 'Dockerfile', entry_point: ['cat', '/opt/files'] } };
    const ours = async (b = builder) => {
      change();
      const t0 = performance.now();
      const result = await b.build({ spec, runId: `bench${version}`, itemId: `bench-${version}`, contextDir: context }, { logger: silentLogger });
      const ms = performance.now() - t0;
      if (result.cached) throw new Error(`bench: the docker builder reused ${result.imageUri} instead of building it`);
      return ms;
    };
    const cli = async () => {
      change();
      return timeCli(['build', '-t', `bench/cli:v${version}`, '-f', join(context, 'Dockerfile'), context], cliEnv);
    };
    const cliVersion = await new Promise<string>((resolve) => {
      const child = spawn('docker', ['version', '--format', '{{.Client.Version}} (engine {{.Server.Version}})'], { env: cliEnv });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.on('close', () => resolve(out.trim()));
      child.on('error', () => resolve('unknown'));
    });

    type Side = 'ours' | 'cli' | 'gzip';
    const sides: Side[] = withGzip ? ['ours', 'cli', 'gzip'] : ['ours', 'cli'];
    const build = (side: Side) => (side === 'ours' ? ours() : side === 'cli' ? cli() : ours(gzipBuilder));
    // Each round starts with the next side: with two sides, they alternate.
    const order = (r: number) => sides.map((_, i) => sides[(r + i) % sides.length]!);
    const times: Record<'cold' | 'warm', Record<Side, number[]>> = { cold: { ours: [], cli: [], gzip: [] }, warm: { ours: [], cli: [], gzip: [] } };
    for (let r = 0; r < rounds; r++) {
      for (const side of order(r)) {
        await removeAllButBase(engine.socketPath, engine.baseImage);
        times.cold[side].push(await build(side));
      }
    }
    // Warm: both sides have the dependency layers (one untimed build each), then every timed build rebuilds from COPY on.
    await ours();
    await cli();
    for (let r = 0; r < rounds; r++) {
      for (const side of order(r)) times.warm[side].push(await build(side));
    }

    const figures = (mode: 'cold' | 'warm') => {
      const o = times[mode].ours;
      const c = times[mode].cli;
      return {
        oursMs: o.map(Math.round),
        cliMs: c.map(Math.round),
        oursMedianMs: Math.round(median(o)),
        cliMedianMs: Math.round(median(c)),
        oursMinMs: Math.round(Math.min(...o)),
        cliMinMs: Math.round(Math.min(...c)),
        ratio: round(median(o) / median(c), 2),
        ...(withGzip
          ? {
              gzipMs: times[mode].gzip.map(Math.round),
              gzipMedianMs: Math.round(median(times[mode].gzip)),
              gzipRatio: round(median(times[mode].gzip) / median(c), 2),
            }
          : {}),
      };
    };
    const cold = figures('cold');
    const warm = figures('warm');
    const coldMet = cold.ratio <= DOCKER_BUILD_TARGETS.ratio;
    const warmMet = warm.ratio <= DOCKER_BUILD_TARGETS.ratio;
    process.stdout.write(
      [
        `docker build: ${round(tree.bytes / MiB, 1)} MiB context, ${tree.files + 1} files, ${rounds} rounds per mode, alternating; docker CLI ${cliVersion}, DOCKER_BUILDKIT=0`,
        formatTable([
          ['', 'ours median ms', 'docker build median ms', 'ours min', 'cli min', 'ratio', 'target', ''],
          [
            'cold (no cache)',
            cold.oursMedianMs,
            cold.cliMedianMs,
            cold.oursMinMs,
            cold.cliMinMs,
            cold.ratio,
            `≤ ${DOCKER_BUILD_TARGETS.ratio}`,
            verdict(coldMet),
          ],
          [
            'warm (code changed)',
            warm.oursMedianMs,
            warm.cliMedianMs,
            warm.oursMinMs,
            warm.cliMinMs,
            warm.ratio,
            `≤ ${DOCKER_BUILD_TARGETS.ratio}`,
            verdict(warmMet),
          ],
        ]),
        ...(withGzip
          ? [
              `ours with gzipLevel 1, median ms (ratio to docker build): cold ${cold.gzipMedianMs} (${cold.gzipRatio}), warm ${warm.gzipMedianMs} (${warm.gzipRatio})`,
            ]
          : []),
        '',
      ].join('\n'),
    );
    const result = {
      contextMiB: round(tree.bytes / MiB, 1),
      contextFiles: tree.files + 1,
      rounds,
      dockerCli: cliVersion,
      cold,
      warm,
      targets: DOCKER_BUILD_TARGETS,
      summary: [
        {
          benchmark: 'docker-build-vs-cli',
          figure: `cold build, ours / docker build (median of ${rounds})`,
          value: String(cold.ratio),
          target: `≤ ${DOCKER_BUILD_TARGETS.ratio}`,
          met: coldMet,
        },
        {
          benchmark: 'docker-build-vs-cli',
          figure: `warm build, ours / docker build (median of ${rounds})`,
          value: String(warm.ratio),
          target: `≤ ${DOCKER_BUILD_TARGETS.ratio}`,
          met: warmMet,
        },
      ],
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    writeResult('docker-build-vs-cli', result);
    return result;
  } finally {
    rmSync(work, { recursive: true, force: true });
    await engine.stop();
  }
}

runIfMain(import.meta.url, () => run());
