import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { expect } from 'vitest';
import {
  createBuildStandIn,
  KANIKO_IMAGE_PATTERN,
  parseExecutorArgs,
  startKubeTestServer,
  type BuildStandInOptions,
  type KubeTestServer,
  type PodExecutor,
  type StandInBuild,
} from '@launch/testkit';
import { cli, status, type Result } from './helpers.js';

/**
 * What the kaniko end-to-end tests of the binary share (one file per store: s3 in kaniko.int.test.ts,
 * gcs-kaniko.int.test.ts, azure-kaniko.int.test.ts): the Kubernetes test server with the build
 * stand-in on kaniko pods and a scripted run pod, the job's files, the two-job round trip with its
 * assertions, and the checks on a failure's output.
 */

/** Reads the object behind a kaniko `--context` URI the stand-in cannot read itself, as kaniko would (with the pod's credentials); undefined: not this fetcher's scheme. */
export type ContextFetcher = (uri: string, pod: Pod, signal: AbortSignal) => Promise<Readable | undefined>;

/** A pod as the test server hands it to a kubelet script. */
export type Pod = any;

export interface KanikoCluster {
  kube: KubeTestServer;
  /** Every build, with the executor's args as the agent wrote them (the original `--context`). */
  builds: StandInBuild[];
  /** The image each run pod was started from. */
  runImages: string[];
  close(): Promise<void>;
}

export interface KanikoClusterOptions {
  /** The test Docker engine's socket (the stand-in builds and pushes there). */
  socketPath: string;
  /** `host:port` of the registry the run pods' images come from. */
  registryHost: string;
  repository: string;
  /** For stores other than S3 and PVC: fetches the context object. */
  fetchContext?: ContextFetcher;
  /** More stand-in options (the S3 endpoint, push credentials). */
  standIn?: Omit<BuildStandInOptions, 'socketPath' | 'onBuild' | 'pvcDirs'>;
  /** Called when a build pod starts, before its context is read (the object must be in the store then). */
  onBuild?: (build: StandInBuild) => void;
}

const FETCHED_CLAIM = 'e2e-fetched-context';
const FETCHED_MOUNT = '/e2e-fetched-context';

/**
 * The stand-in reads `s3://` and `tar://` contexts. For another store the context is read here by
 * `fetch` (as kaniko reads `gs://` or an Azure blob URL), written to a host directory standing for a
 * PVC, and the stand-in builds the pod with its `--context` pointing there; everything else about the
 * pod (destinations, Dockerfile, build args) is the agent's.
 */
function withFetchedContext(
  standIn: PodExecutor,
  dir: string,
  fetch: ContextFetcher | undefined,
  builds: StandInBuild[],
  onBuild?: (b: StandInBuild) => void,
): PodExecutor {
  return async (pod, io) => {
    const args = ((pod.spec?.containers?.[0]?.args ?? []) as unknown[]).map(String);
    const build = parseExecutorArgs(args);
    builds.push(build);
    onBuild?.(build);
    let stream: Readable | undefined;
    try {
      stream = fetch ? await fetch(build.context, pod, io.signal) : undefined;
    } catch (error) {
      io.log(`error building image: getting build context ${build.context}: ${error instanceof Error ? error.message : String(error)}`);
      return { exitCode: 1 };
    }
    if (!stream) return standIn(pod, io);
    const file = `${randomUUID()}.tgz`;
    await pipeline(stream, createWriteStream(join(dir, file)));
    const copy = structuredClone(pod) as Pod;
    const container = copy.spec.containers[0];
    const kept: string[] = [];
    for (let i = 0; i < args.length; i++) {
      if (args[i] === '--context' || args[i] === '-c') i++;
      else if (!args[i]!.startsWith('--context=') && !args[i]!.startsWith('-c=')) kept.push(args[i]!);
    }
    container.args = [...kept, `--context=tar://${FETCHED_MOUNT}/${file}`];
    container.volumeMounts = [...(container.volumeMounts ?? []), { name: FETCHED_CLAIM, mountPath: FETCHED_MOUNT }];
    copy.spec.volumes = [...(copy.spec.volumes ?? []), { name: FETCHED_CLAIM, persistentVolumeClaim: { claimName: FETCHED_CLAIM } }];
    try {
      return await standIn(copy, io);
    } finally {
      await rm(join(dir, file), { force: true });
    }
  };
}

/**
 * The Kubernetes test server with namespaces `default` and `wandb`: kaniko pods run the build stand-in
 * (on the real Docker engine and registry), pods of `<registryHost>/<repository>:*` record their image
 * and succeed.
 */
export async function startKanikoCluster(options: KanikoClusterOptions): Promise<KanikoCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'launch-kaniko-e2e-'));
  const kube = await startKubeTestServer({ namespaces: ['default', 'wandb'], kubelet: { stepDelayMs: 5 } });
  const builds: StandInBuild[] = [];
  const runImages: string[] = [];
  const standIn = createBuildStandIn({ ...(options.standIn ?? {}), socketPath: options.socketPath, pvcDirs: { [FETCHED_CLAIM]: dir } });
  kube.kubelet.script({ image: KANIKO_IMAGE_PATTERN }, [
    { pending: 'ContainerCreating' },
    { running: true },
    { execute: withFetchedContext(standIn, dir, options.fetchContext, builds, options.onBuild) },
  ]);
  kube.kubelet.script({ image: new RegExp(`^${escape(options.registryHost)}/${escape(options.repository)}:`) }, [
    { pending: 'ContainerCreating' },
    { running: true },
    {
      execute: async (pod) => {
        runImages.push(String((pod as Pod).spec.containers[0].image));
        return { exitCode: 0 };
      },
    },
  ]);
  return {
    kube,
    builds,
    runImages,
    async close() {
      await kube.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Creates (or replaces) a Secret in the test cluster, as the Helm chart would (e.g. `azure-storage-access-key`). */
export async function putSecret(kube: KubeTestServer, namespace: string, name: string, data: Record<string, string>): Promise<void> {
  const body = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  };
  const res = await fetch(`${kube.url}/api/v1/namespaces/${namespace}/secrets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${kube.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`creating secret ${namespace}/${name}: ${res.status} ${await res.text()}`);
}

/** The value of env var `name` of a pod's first container, resolving `secretKeyRef` from the test cluster (as the kubelet does). */
export function podEnv(kube: KubeTestServer, pod: Pod, name: string): string | undefined {
  const entry = ((pod.spec?.containers?.[0]?.env ?? []) as Pod[]).find((e) => e.name === name);
  if (!entry) return undefined;
  if (typeof entry.value === 'string') return entry.value;
  const ref = entry.valueFrom?.secretKeyRef;
  if (!ref) return undefined;
  const secret = kube.getObject(`/api/v1/namespaces/${pod.metadata.namespace}/secrets/${ref.name}`) as { data?: Record<string, string> } | undefined;
  const value = secret?.data?.[ref.key];
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}

export interface KanikoJobFiles {
  /** The build context directory (a Dockerfile FROM localhost/busybox:test and a script). */
  code: string;
  /** A launch spec with `resource: kubernetes`. */
  spec: string;
  /** launch-config.yaml */
  cfg: string;
}

/** Writes the job's context, spec and a launch config (`builder.type: kaniko`, the destination and store, plus `extraConfig` lines). */
export async function writeKanikoJob(
  dir: string,
  o: { destination: string; store: string; extraConfig?: string[]; configName?: string },
): Promise<KanikoJobFiles> {
  const code = join(dir, 'code');
  await mkdir(code, { recursive: true });
  await writeFile(join(code, 'Dockerfile'), 'FROM localhost/busybox:test\nCOPY run.sh /run.sh\nENTRYPOINT ["sh", "/run.sh"]\n');
  await writeFile(join(code, 'run.sh'), 'echo built-by-kaniko\n');
  const spec = join(dir, 'spec.yaml');
  await writeFile(spec, 'resource: kubernetes\n');
  const cfg = join(dir, o.configName ?? 'launch-config.yaml');
  await writeFile(
    cfg,
    [...(o.extraConfig ?? []), 'builder:', '  type: kaniko', `  destination: ${o.destination}`, `  build-context-store: ${o.store}`, ''].join('\n'),
  );
  return { code, spec, cfg };
}

export function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export interface RoundTrip {
  env: Record<string, string>;
  files: KanikoJobFiles;
  cluster: KanikoCluster;
  registryHost: string;
  repository: string;
  /** The line `config check` must print for the store. */
  storeLine: string;
  /** What the context URI the agent hands kaniko must look like. */
  contextUri: RegExp;
  /** The context objects in the store now (names or URIs). */
  listObjects(): Promise<string[]>;
  /** The list taken while each build ran (filled through `KanikoClusterOptions.onBuild`). */
  objectsDuringBuild: Promise<string[]>[];
  /** Strings that must appear in no output (keys, secrets, tokens). */
  secrets: string[];
}

/**
 * Two identical jobs through the binary: the first uploads its context to the store, builds it in a
 * Job (the stand-in reads the object), pushes, runs the pushed image, and the object and the build
 * Job are gone afterwards; the second finds the image through the registry's exists check and runs it
 * without a build. Returns both runs' output.
 */
export async function expectKanikoRoundTrip(t: RoundTrip): Promise<{ r1: Result; r2: Result; image: string }> {
  const check = await cli(['config', 'check', '-c', t.files.cfg], t.env);
  expect(check.code, check.stdout + check.stderr).toBe(0);
  expect(check.stdout + check.stderr).toContain(t.storeLine);
  expect(check.stdout + check.stderr).toContain('builder: kaniko (builder.type)');

  const enqueue = async () => {
    const r = await cli(['enqueue', '--spec', t.files.spec, '--context', t.files.code], t.env);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  };
  const first = await enqueue();
  const r1 = await cli(['run', '-c', t.files.cfg, '--exit-when-idle'], t.env, 180_000);
  expect(r1.code, r1.stderr).toBe(0);
  expect(r1.stderr).toContain('launch: builder kaniko (builder.type: kaniko)');
  const built = new RegExp(`\\[${first}\\] image (${escape(t.registryHost)}/${escape(t.repository)}:[0-9a-f]+) built`).exec(r1.stderr);
  expect(built, r1.stderr).not.toBeNull();
  const image = built![1]!;
  expect(t.cluster.builds).toHaveLength(1);
  expect(t.cluster.builds[0]!.context).toMatch(t.contextUri);
  expect(t.cluster.builds[0]!.destinations).toContain(image);
  const tags = (await (await fetch(`http://${t.registryHost}/v2/${t.repository}/tags/list`)).json()) as { tags: string[] };
  expect(tags.tags).toEqual([image.split(':').pop()]);
  expect(t.cluster.runImages).toEqual([image]);
  // The uploaded context was in the store during the build, and is gone now, as is the build Job.
  expect(await t.objectsDuringBuild[0]).toHaveLength(1);
  expect(await t.listObjects()).toEqual([]);
  expect(t.cluster.kube.listObjects('/apis/batch/v1/namespaces/wandb/jobs')).toEqual([]);

  const second = await enqueue();
  const r2 = await cli(['run', '-c', t.files.cfg, '--exit-when-idle'], t.env, 180_000);
  expect(r2.code, r2.stderr).toBe(0);
  expect(r2.stderr).toContain(`[${second}] image ${image} (cached)`);
  expect(t.cluster.builds).toHaveLength(1);
  expect(t.cluster.runImages).toEqual([image, image]);
  const s = await status(t.env);
  for (const id of [first, second]) expect(s.items.find((i) => i.id === id)).toMatchObject({ state: 'finished' });
  expectCleanOutput([check.stdout, check.stderr, r1.stdout, r1.stderr, r2.stdout, r2.stderr, JSON.stringify(s)].join('\n'), t.secrets);
  return { r1, r2, image };
}

/** A JavaScript stack frame (`    at fn (file.js:1:2)`), which a user must never see. */
const STACK_FRAME = /^\s+at (?:.+ \()?(?:file:\/\/|\/|node:)[^\s)]*:\d+:\d+\)?$/m;

/** No stack trace and none of `secrets` in `text`. */
export function expectCleanOutput(text: string, secrets: string[]): void {
  expect(text).not.toMatch(STACK_FRAME);
  for (const secret of secrets) if (secret) expect(text, 'a secret reached the output').not.toContain(secret);
}

/**
 * One job through the binary that must fail at stage `build`: returns its failure message and the
 * run's output (checked for stack traces and `secrets`). The agent itself exits 0 (the job failed, not the agent).
 */
export async function expectBuildFailure(env: Record<string, string>, files: KanikoJobFiles, secrets: string[]): Promise<{ message: string; output: string }> {
  const id = (await cli(['enqueue', '--spec', files.spec, '--context', files.code], env)).stdout.trim();
  const r = await cli(['run', '-c', files.cfg, '--exit-when-idle'], env, 180_000);
  expect(r.code, r.stderr).toBe(0);
  const s = await status(env);
  const item = s.items.find((i) => i.id === id);
  expect(item, r.stderr).toMatchObject({ state: 'failed', failure: { stage: 'build' } });
  const output = [r.stdout, r.stderr, JSON.stringify(s)].join('\n');
  expectCleanOutput(output, secrets);
  return { message: item!.failure!.message, output };
}

/** `run` refuses the config at start-up (exit 2) before taking any job, without a stack trace or a secret. Returns its stderr. */
export async function expectStartupRefusal(env: Record<string, string>, cfg: string, secrets: string[]): Promise<string> {
  const r = await cli(['run', '-c', cfg, '--exit-when-idle'], env);
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).not.toContain('registered');
  expectCleanOutput([r.stdout, r.stderr].join('\n'), secrets);
  return r.stderr;
}
