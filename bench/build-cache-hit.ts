/**
 * Cache hit: enqueue → container start of a job whose image already exists in the registry (the
 * docker builder hashes the code, finds the source-hash tag with one `HEAD /v2/…/manifests/<tag>` and
 * skips the build), against an image-only job (no build at all), alternating in the same run through
 * the same agent. Targets: at most 50 ms more than the image-only job, and exactly one registry
 * request per cache hit.
 *
 * The agent is the real binary (`node examples/agent/dist/cli.js run --source embedded --log-format
 * json`) with `builder.type: docker` and `builder.destination` in its `launch-config.yaml`, so it is
 * wired as users run it: embedded queue, docker builder, OCI registry, local-container runner. It
 * runs on a private dockerd (test kit helpers: own socket, no bridge) with the busybox base image,
 * and a Distribution registry behind a counting HTTP proxy on 127.0.0.1: the agent and the engine
 * only know the proxy's address, so every registry request is counted and timed.
 *
 * A warm-up builds the code once (a cache miss: build + push), so the engine also holds the image,
 * as on the agent that built it; the cache-hit jobs then run it without a pull. Each timed job is
 * enqueued by this process into the agent's state directory 20–50 ms after the previous one ended.
 * *Container start* is the engine's own `start` event (`timeNano`) for the container labelled with
 * the item id; latency = that − the time just before `enqueue()`.
 *
 *   npx tsx bench/build-cache-hit.ts [--jobs 30]   (after pnpm build)
 */
import { randomInt } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { createEmbeddedQueue } from '@launch/core';
import { startBenchDocker } from './docker-build-vs-cli.js';
import { startAgentProcess, type AgentEvent, type AgentProcess } from './lib/agent-process.js';
import { sleep, wallMs } from './lib/clock.js';
import { runIfMain, waitUntil, writeResult } from './lib/results.js';
import { distribution, percentile, round } from './lib/stats.js';
import { formatTable, verdict } from './lib/table.js';

export const CACHE_HIT_TARGETS = { extraMs: 50, registryRequests: 1 };

/** One request the proxy passed to the registry. */
interface RegistryRequest {
  at: number;
  method: string;
  path: string;
  status: number;
}

/** An HTTP proxy on 127.0.0.1 in front of `upstream` (`host:port`) that records every request. */
async function startCountingProxy(upstream: string): Promise<{ address: string; requests: RegistryRequest[]; close(): Promise<void> }> {
  const [host, port] = upstream.split(':') as [string, string];
  const keepAlive = new Agent({ keepAlive: true });
  const requests: RegistryRequest[] = [];
  const server = createServer((req, res) => {
    const entry: RegistryRequest = { at: wallMs(), method: req.method ?? '', path: req.url ?? '', status: 0 };
    requests.push(entry);
    // The Host header is passed on unchanged, so the registry's Location headers name the proxy.
    const up = request({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers, agent: keepAlive }, (answer: IncomingMessage) => {
      entry.status = answer.statusCode ?? 0;
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    up.on('error', (error) => {
      entry.status = 502;
      if (!res.headersSent) res.writeHead(502);
      res.end(String(error));
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
        keepAlive.destroy();
      }),
  };
}

/** Follows the engine's container `start` events; maps the runner's item-id label to the event's time (ms, sub-ms). */
function followContainerStarts(socketPath: string): { starts: Map<string, number>; ready: Promise<void>; close(): void } {
  const starts = new Map<string, number>();
  const filters = encodeURIComponent(JSON.stringify({ type: ['container'], event: ['start'] }));
  let close = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    const req = request({ socketPath, method: 'GET', path: `/events?filters=${filters}` }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`bench: GET /events answered ${res.statusCode}`));
      // Destroyed at the end of the run: that error is expected.
      res.on('error', () => undefined);
      const lines = createInterface(res);
      lines.on('error', () => undefined);
      lines.on('line', (line) => {
        const e = JSON.parse(line) as { timeNano?: number; Actor?: { Attributes?: Record<string, string> } };
        const item = e.Actor?.Attributes?.['launch.dev/item-id'];
        if (item && e.timeNano) starts.set(item, e.timeNano / 1e6);
      });
      resolve();
    });
    req.on('error', reject);
    req.end();
    close = () => {
      req.on('error', () => undefined);
      req.destroy();
    };
  });
  return { starts, ready, close: () => close() };
}

type Kind = 'image-only' | 'cache-hit';

interface Sample {
  kind: Kind;
  item: string;
  latencyMs: number;
  claimMs: number;
  /** Claim → run submitted (the build's exists check and the container's create and start for the cache hit). */
  claimToSubmitMs: number;
  /** Claim → image known (`build:finished`: the exists check); 0 for an image-only job, which has no build step. */
  claimToImageMs: number;
  registryRequests: RegistryRequest[];
}

function jobsArg(argv: string[]): number {
  const i = argv.indexOf('--jobs');
  const raw = i === -1 ? (process.env.BENCH_CACHE_HIT_JOBS ?? '30') : argv[i + 1];
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--jobs: expected a whole number from 1, found ${JSON.stringify(raw)}`);
  return n;
}

/** Runs the benchmark; prints a table and writes `bench/results/build-cache-hit.json`. */
export async function run(argv: string[] = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const jobs = jobsArg(argv);
  const engine = await startBenchDocker({ registry: true });
  const dir = mkdtempSync(join(tmpdir(), 'launch-bench-cache-hit-'));
  let agent: AgentProcess | undefined;
  let proxy: Awaited<ReturnType<typeof startCountingProxy>> | undefined;
  let events: ReturnType<typeof followContainerStarts> | undefined;
  const stateDir = join(dir, 'state');
  const queue = createEmbeddedQueue({ stateDir });
  try {
    proxy = await startCountingProxy(engine.registry!);
    const destination = `${proxy.address}/bench/app`;
    const home = join(dir, 'home');
    mkdirSync(join(home, '.config', 'wandb'), { recursive: true });
    writeFileSync(join(home, '.config', 'wandb', 'launch-config.yaml'), `builder:\n  type: docker\n  destination: ${destination}\n`);
    const code = join(dir, 'code');
    mkdirSync(code);
    writeFileSync(join(code, 'Dockerfile'), `FROM ${engine.baseImage}\nCOPY train.sh /train.sh\n`);
    writeFileSync(join(code, 'train.sh'), 'echo training\n');
    events = followContainerStarts(engine.socketPath);
    await events.ready;

    // The agent reads its config from ~/.config/wandb and finds the engine at DOCKER_HOST; startAgentProcess copies process.env.
    const saved = { HOME: process.env.HOME, DOCKER_HOST: process.env.DOCKER_HOST, LAUNCH_AGENT_NAME: process.env.LAUNCH_AGENT_NAME };
    Object.assign(process.env, { HOME: home, DOCKER_HOST: `unix://${engine.socketPath}`, LAUNCH_AGENT_NAME: `bench-cache-hit-${process.pid}` });
    try {
      agent = startAgentProcess({ stateDir, maxJobs: 1 });
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
    const a = agent;
    await a.waitFor((e) => e.event === 'agent:registered', 60_000, 'the agent to register');

    const specs: Record<Kind, Record<string, unknown>> = {
      'image-only': { resource: 'local-container', docker: { docker_image: engine.baseImage }, overrides: { entry_point: ['true'] } },
      'cache-hit': { resource: 'local-container', uri: pathToFileURL(code).href, overrides: { dockerfile: 'Dockerfile', entry_point: ['true'] } },
    };
    const ended = (id: string) => (e: AgentEvent) => e.item === id && (e.event === 'item:finished' || e.event === 'item:failed');
    const runJob = async (kind: Kind) => {
      const mark = proxy!.requests.length;
      const t0 = wallMs();
      const id = (await queue.enqueue({ queue: 'default', spec: specs[kind] })).id;
      const end = await a.waitFor(ended(id), 300_000, `${kind} job ${id} to end`);
      if (end.event !== 'item:finished' || end.exitCode !== 0) {
        throw new Error(`bench: ${kind} job ${id} did not succeed: ${JSON.stringify(end)}\n${a.otherOutput()}`);
      }
      await waitUntil(() => events!.starts.has(id), 10_000, `the engine's start event for ${id}`);
      const at = (name: string) => a.events.find((e) => e.item === id && e.event === name)!;
      const built = a.events.find((e) => e.item === id && e.event === 'build:finished');
      return {
        id,
        t0,
        end,
        built,
        sample: {
          kind,
          item: id,
          latencyMs: events!.starts.get(id)! - t0,
          claimMs: at('item:claimed').time - t0,
          claimToSubmitMs: at('run:submitted').time - at('item:claimed').time,
          claimToImageMs: built ? built.time - at('item:claimed').time : 0,
          registryRequests: proxy!.requests.slice(mark),
        } satisfies Sample,
      };
    };

    // Warm-up: one image-only job (loads the runner's code paths), then the first build of the code (cache miss: build + push).
    await runJob('image-only');
    const miss = await runJob('cache-hit');
    if (miss.built?.cached !== false) throw new Error(`bench: the warm-up job was expected to build its image, found ${JSON.stringify(miss.built)}`);
    const missFigures = {
      ms: Math.round(miss.sample.latencyMs),
      imageUri: String(miss.built.imageUri),
      registryRequests: miss.sample.registryRequests.length,
    };

    const samples: Sample[] = [];
    for (let i = 0; i < jobs; i++) {
      for (const kind of i % 2 === 0 ? (['image-only', 'cache-hit'] as const) : (['cache-hit', 'image-only'] as const)) {
        await sleep(20 + randomInt(31));
        const job = await runJob(kind);
        if (kind === 'cache-hit' && job.built?.cached !== true)
          throw new Error(`bench: job ${job.id} was expected to reuse the image, found ${JSON.stringify(job.built)}`);
        samples.push(job.sample);
      }
    }

    const of = (kind: Kind) => samples.filter((s) => s.kind === kind);
    const image = distribution(of('image-only').map((s) => s.latencyMs));
    const hit = distribution(of('cache-hit').map((s) => s.latencyMs));
    const p95 = (values: number[]) =>
      round(
        percentile(
          [...values].sort((x, y) => x - y),
          95,
        ),
        1,
      );
    const imageP95 = p95(of('image-only').map((s) => s.latencyMs));
    const hitP95 = p95(of('cache-hit').map((s) => s.latencyMs));
    const extraP50 = round(hit.p50 - image.p50, 1);
    const extraP95 = round(hitP95 - imageP95, 1);
    const hitRequests = of('cache-hit').map((s) => s.registryRequests.length);
    const imageRequests = of('image-only').map((s) => s.registryRequests.length);
    const requestKinds = [
      ...new Set(
        of('cache-hit').flatMap((s) => s.registryRequests.map((r) => `${r.method} ${r.path.replace(/manifests\/[^/]+$/, 'manifests/<tag>')} → ${r.status}`)),
      ),
    ];
    const steps = (kind: Kind) => ({
      enqueueToClaimP50Ms: distribution(of(kind).map((s) => s.claimMs)).p50,
      claimToSubmitP50Ms: distribution(of(kind).map((s) => s.claimToSubmitMs)).p50,
      claimToImageP50Ms: distribution(of(kind).map((s) => s.claimToImageMs)).p50,
      claimToImageP95Ms: p95(of(kind).map((s) => s.claimToImageMs)),
    });
    const extraMet = extraP50 <= CACHE_HIT_TARGETS.extraMs;
    const extraP95Met = extraP95 <= CACHE_HIT_TARGETS.extraMs;
    const requestsMet = hitRequests.every((n) => n === CACHE_HIT_TARGETS.registryRequests);
    const figures = {
      jobsPerKind: jobs,
      imageOnly: { ...image, p95: imageP95, ...steps('image-only'), registryRequests: { min: Math.min(...imageRequests), max: Math.max(...imageRequests) } },
      cacheHit: {
        ...hit,
        p95: hitP95,
        ...steps('cache-hit'),
        registryRequests: { min: Math.min(...hitRequests), max: Math.max(...hitRequests) },
        requestKinds,
      },
      extraP50Ms: extraP50,
      extraP95Ms: extraP95,
      firstBuild: missFigures,
    };
    process.stdout.write(
      [
        `Cache hit: ${jobs} jobs of each kind, alternating, enqueue → container start (the engine's start event), one agent (the binary) with builder.type docker`,
        formatTable([
          ['job', 'p50 ms', 'p95 ms', 'mean', 'min', 'max', 'enqueue→claim p50', 'claim→image p50', 'claim→submitted p50', 'registry requests'],
          [
            'image-only',
            image.p50,
            imageP95,
            image.mean,
            image.min,
            image.max,
            figures.imageOnly.enqueueToClaimP50Ms,
            '',
            figures.imageOnly.claimToSubmitP50Ms,
            `${Math.min(...imageRequests)}–${Math.max(...imageRequests)}`,
          ],
          [
            'cache hit',
            hit.p50,
            hitP95,
            hit.mean,
            hit.min,
            hit.max,
            figures.cacheHit.enqueueToClaimP50Ms,
            figures.cacheHit.claimToImageP50Ms,
            figures.cacheHit.claimToSubmitP50Ms,
            `${Math.min(...hitRequests)}–${Math.max(...hitRequests)}`,
          ],
        ]),
        '',
        formatTable([
          ['', 'value', 'target', ''],
          ['cache hit − image-only, p50 ms', extraP50, `≤ ${CACHE_HIT_TARGETS.extraMs}`, verdict(extraMet)],
          ['cache hit − image-only, p95 ms', extraP95, `≤ ${CACHE_HIT_TARGETS.extraMs}`, verdict(extraP95Met)],
          [
            'cache hit: claim → image known (exists check), p50 / p95 ms',
            `${figures.cacheHit.claimToImageP50Ms} / ${figures.cacheHit.claimToImageP95Ms}`,
            '',
            '',
          ],
          [
            'registry requests per cache hit',
            hitRequests.every((n) => n === hitRequests[0]) ? hitRequests[0]! : `${Math.min(...hitRequests)}–${Math.max(...hitRequests)}`,
            `= ${CACHE_HIT_TARGETS.registryRequests}`,
            verdict(requestsMet),
          ],
        ]),
        `cache-hit requests: ${requestKinds.join(', ')}`,
        `first build (cache miss, warm-up): ${missFigures.ms} ms enqueue → container start, ${missFigures.registryRequests} registry requests (check, push)`,
        '',
      ].join('\n'),
    );
    const result = {
      ...figures,
      samples: samples.map((s) => ({ kind: s.kind, latencyMs: round(s.latencyMs, 1), registryRequests: s.registryRequests.length })),
      targets: CACHE_HIT_TARGETS,
      summary: [
        {
          benchmark: 'build-cache-hit',
          figure: `enqueue → container start, cache hit − image-only, p50 (${jobs} each)`,
          value: `${extraP50} ms`,
          target: `≤ ${CACHE_HIT_TARGETS.extraMs} ms`,
          met: extraMet,
        },
        {
          benchmark: 'build-cache-hit',
          figure: `enqueue → container start, cache hit − image-only, p95 (${jobs} each)`,
          value: `${extraP95} ms`,
          target: `≤ ${CACHE_HIT_TARGETS.extraMs} ms`,
          met: extraP95Met,
        },
        {
          benchmark: 'build-cache-hit',
          figure: 'registry requests per cache hit',
          value: `${Math.min(...hitRequests)}–${Math.max(...hitRequests)}`,
          target: `= ${CACHE_HIT_TARGETS.registryRequests}`,
          met: requestsMet,
        },
      ],
    };
    process.stdout.write(`${JSON.stringify({ ...result, samples: undefined })}\n`);
    writeResult('build-cache-hit', result);
    return result;
  } finally {
    await agent?.stop();
    events?.close();
    await queue.close();
    await proxy?.close();
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, () => run());
