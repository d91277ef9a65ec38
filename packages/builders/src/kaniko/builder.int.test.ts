import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import Docker from 'dockerode';
import { LaunchError, parseLaunchSpec, silentLogger, type Registry } from '@launch/core';
import { createS3ContextStore } from '@launch/cloud-aws';
import { describeBuilder, dockerService, registryServices, serviceAvailable, startKubeTestServer, type KubeTestServer } from '@launch/testkit';
// Until @launch/testkit's index exports them (see the report), the stand-in is imported from its file.
import { createBuildStandIn, KANIKO_IMAGE_PATTERN, type StandInBuild } from '@launch/testkit';
import { S3RVER_CREDENTIALS, startS3rver, type RunningS3rver } from '../../../cloud-aws/src/test-support/s3rver.js';
import { createKanikoBuilder, type KanikoBuilder } from './builder.js';
import type { KanikoBuilderOptions } from './options.js';

const docker = dockerService();
const registries = registryServices();
const available = serviceAvailable('the test Docker engine and registries', !!docker && !!registries);

const NAMESPACE = 'launch-builds';
const BUCKET = 'kaniko-contexts';
const ctx = { logger: silentLogger };
const repo = () => `launch-kaniko/${randomBytes(4).toString('hex')}`;

/** HEAD on the manifest against the real Distribution registry (the shared one lives in @launch/registries). */
function testRegistry(host: string, repository: string, credentials?: { username: string; password: string }): Registry & { heads: number } {
  const registry = {
    specificationVersion: 'v1' as const,
    name: 'test-oci',
    uri: `${host}/${repository}`,
    needsPullSecret: false,
    heads: 0,
    async credentials() {
      return credentials ?? null;
    },
    async imageExists(imageUri: string) {
      registry.heads++;
      const colon = imageUri.lastIndexOf(':');
      const headers: Record<string, string> = {
        accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json',
      };
      if (credentials) headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
      const response = await fetch(`http://${host}/v2/${imageUri.slice(host.length + 1, colon)}/manifests/${imageUri.slice(colon + 1)}`, {
        method: 'HEAD',
        headers,
      });
      if (response.status === 200) return true;
      if (response.status === 404) return false;
      throw new Error(`HEAD manifest: ${response.status}`);
    },
  };
  return registry;
}

describe.runIf(available)('kaniko builder through the build stand-in', () => {
  let kube: KubeTestServer;
  let s3: RunningS3rver;
  let reader: S3Client;
  let scratch: string;
  let pvcDir: string;
  const builds: StandInBuild[] = [];
  /** ConfigMaps present while each build ran. */
  const configMapsDuringBuild: unknown[][] = [];

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'launch-kaniko-'));
    pvcDir = join(scratch, 'pvc');
    mkdirSync(pvcDir);
    s3 = await startS3rver([BUCKET]);
    reader = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { ...S3RVER_CREDENTIALS } });
    kube = await startKubeTestServer({ namespaces: ['default', NAMESPACE] });
    const standIn = createBuildStandIn({
      socketPath: docker!.socketPath,
      s3: { endpoint: s3.endpoint, credentials: { ...S3RVER_CREDENTIALS } },
      pvcDirs: { 'kaniko-contexts': pvcDir },
      auths: { [registries!.basic]: { username: registries!.username, password: registries!.password } },
      onBuild: (b) => {
        builds.push(b);
        configMapsDuringBuild.push(kube.listObjects(`/api/v1/namespaces/${NAMESPACE}/configmaps`));
      },
    });
    kube.kubelet.script({ image: KANIKO_IMAGE_PATTERN }, [{ pending: 'ContainerCreating' }, { running: true }, { execute: standIn }]);
  });

  afterAll(async () => {
    await kube?.close();
    await s3?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const s3Store = () =>
    createS3ContextStore({
      uri: `s3://${BUCKET}/ctx`,
      region: 'us-east-1',
      credentials: { ...S3RVER_CREDENTIALS },
      endpoint: s3.endpoint,
      forcePathStyle: true,
    });
  const kaniko = (over: Partial<KanikoBuilderOptions> = {}): KanikoBuilder =>
    createKanikoBuilder({ kubeconfigPath: kube.kubeconfigPath, namespace: NAMESPACE, contextStore: s3Store(), ...over });
  const objects = async () => ((await reader.send(new ListObjectsV2Command({ Bucket: BUCKET }))).Contents ?? []).map((o) => o.Key);
  const leftovers = () => ({
    jobs: kube.listObjects(`/apis/batch/v1/namespaces/${NAMESPACE}/jobs`).length,
    configMaps: kube.listObjects(`/api/v1/namespaces/${NAMESPACE}/configmaps`).length,
  });
  function code(files: Record<string, string>): string {
    const dir = join(scratch, randomBytes(6).toString('hex'));
    mkdirSync(dir, { recursive: true });
    for (const [path, content] of Object.entries(files)) writeFileSync(join(dir, path), content);
    return dir;
  }
  const spec = parseLaunchSpec({ overrides: { dockerfile: 'Dockerfile', entry_point: ['sh'] } });

  // The outer beforeAll (kube, s3rver, stand-in) runs before the suite's own.
  describeBuilder('kaniko (stand-in), S3 context store on s3rver, plain Distribution registry', () => {
    return { builder: kaniko(), baseImage: docker!.baseImage, registry: testRegistry(registries!.plain, repo()) };
  });

  it('builds from the uploaded context with its args, skips the second build, waits on a watch, and leaves nothing behind', async () => {
    const registry = testRegistry(registries!.plain, repo());
    const builder = kaniko({ buildArgs: { GREETING: 'from-kaniko-args' }, buildJobName: 'img-build' });
    const dir = code({ Dockerfile: `FROM ${docker!.baseImage}\nARG GREETING=none\nRUN echo "greeting=$GREETING"\n` });
    const lines: string[] = [];
    const before = builds.length;
    const requestsBefore = kube.requests.length;
    const first = await builder.build({ spec, runId: 'Run1', itemId: 'i1', contextDir: dir, registry, onProgress: (l) => lines.push(l) }, ctx);
    expect(first).toMatchObject({ cached: false, tagScheme: 'content', job: `${NAMESPACE}/img-build-run1` });
    expect(lines).toContain('greeting=from-kaniko-args');
    expect(await registry.imageExists(first.imageUri, ctx)).toBe(true);
    expect(builds.length).toBe(before + 1);
    const b = builds.at(-1)!;
    expect(b.context).toBe(`s3://${BUCKET}/ctx/Run1.tgz`);
    expect(b.dockerfile).toBe('Dockerfile.wandb');
    expect(b.destinations).toEqual([first.imageUri]);
    expect(b.buildArgs).toEqual({ GREETING: 'from-kaniko-args' });
    // No polling: the Job is read once per watch (re)start, not every few seconds.
    const jobReads = kube.requests.slice(requestsBefore).filter((r) => r.method === 'GET' && /\/jobs\/img-build-run1$/.test(r.path));
    expect(jobReads.length).toBeLessThanOrEqual(3);
    expect(leftovers()).toEqual({ jobs: 0, configMaps: 0 });
    expect(await objects()).toEqual([]);

    registry.heads = 0;
    const second = await builder.build({ spec, runId: 'run2', itemId: 'i2', contextDir: dir, registry }, ctx);
    expect(second).toMatchObject({ imageUri: first.imageUri, cached: true });
    expect(registry.heads).toBe(1);
    expect(builds.length).toBe(before + 1);
    expect(await objects()).toEqual([]);
  });

  it('fails a failing RUN at stage build with the log tail, and cleans up Job, ConfigMap and context', async () => {
    const marker = `broken-${randomBytes(4).toString('hex')}`;
    const dir = code({ Dockerfile: `FROM ${docker!.baseImage}\nRUN echo ${marker} && exit 3\n` });
    // The Basic-auth registry: its credentials go to kaniko in a docker-config ConfigMap, as W&B does.
    const registry = testRegistry(registries!.basic, repo(), { username: registries!.username, password: registries!.password });
    const error = await kaniko()
      .build({ spec, runId: 'fail1', itemId: 'i', contextDir: dir, registry }, ctx)
      .catch((e: unknown) => e);
    expect(LaunchError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'build.failed', stage: 'build', category: 'BuildFailed' });
    const e = error as LaunchError;
    expect(e.message).toContain(marker);
    expect(e.message).toContain('last ');
    expect(e.hint).toContain(`kubectl logs -n ${NAMESPACE}`);
    expect(e.message + e.hint).not.toContain(registries!.password);
    const during = configMapsDuringBuild.at(-1) as Array<{ metadata: { name: string }; data: Record<string, string> }>;
    expect(during.map((c) => c.metadata.name)).toEqual(['docker-config-wandb-launch-container-build-fail1']);
    expect(JSON.parse(during[0]!.data['config.json']!)).toEqual({
      auths: { [registries!.basic]: { auth: Buffer.from(`${registries!.username}:${registries!.password}`).toString('base64') } },
    });
    expect(leftovers()).toEqual({ jobs: 0, configMaps: 0 });
    expect(await objects()).toEqual([]);
  });

  it('pushes to the Basic-auth registry with the credentials it gives kaniko', async () => {
    const registry = testRegistry(registries!.basic, repo(), { username: registries!.username, password: registries!.password });
    const dir = code({ Dockerfile: `FROM ${docker!.baseImage}\nRUN echo ${randomBytes(4).toString('hex')}\n` });
    const built = await kaniko().build({ spec, runId: 'auth1', itemId: 'i', contextDir: dir, registry }, ctx);
    expect(built.cached).toBe(false);
    expect(await registry.imageExists(built.imageUri, ctx)).toBe(true);
    expect(leftovers()).toEqual({ jobs: 0, configMaps: 0 });
  });

  it('builds from a PVC (tar:///context/<run>.tgz) and removes the copied context', async () => {
    const registry = testRegistry(registries!.plain, repo());
    const dir = code({ Dockerfile: `FROM ${docker!.baseImage}\nRUN echo pvc-${randomBytes(4).toString('hex')}\n` });
    const builder = createKanikoBuilder({ kubeconfigPath: kube.kubeconfigPath, namespace: NAMESPACE, pvcName: 'kaniko-contexts', pvcMountPath: pvcDir });
    const built = await builder.build({ spec, runId: 'pvc1', itemId: 'i', contextDir: dir, registry }, ctx);
    expect(built.cached).toBe(false);
    expect(builds.at(-1)!.context).toBe('tar:///context/pvc1.tgz');
    expect(await registry.imageExists(built.imageUri, ctx)).toBe(true);
    expect(readdirSync(pvcDir)).toEqual([]);
    expect(leftovers()).toEqual({ jobs: 0, configMaps: 0 });
  });

  it('cleans up when ctx.signal aborts the build', async () => {
    const marker = `slow-${randomBytes(4).toString('hex')}`;
    const dir = code({ Dockerfile: `FROM ${docker!.baseImage}\nRUN echo ${marker} && sleep 300\n` });
    const controller = new AbortController();
    const error = await kaniko()
      .build(
        {
          spec,
          runId: 'abort1',
          itemId: 'i',
          contextDir: dir,
          registry: testRegistry(registries!.plain, repo()),
          onProgress: (l) => l.includes(marker) && controller.abort(),
        },
        { ...ctx, signal: controller.signal },
      )
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'build.aborted', stage: 'build' });
    expect(leftovers()).toEqual({ jobs: 0, configMaps: 0 });
    expect(await objects()).toEqual([]);
    // Deleting the Job deleted the pod, which stopped the stand-in's build in dockerd.
    const engine = new Docker({ socketPath: docker!.socketPath });
    const running = async () => (await engine.listContainers()).filter((c) => c.Command.includes(marker)).length;
    const deadline = Date.now() + 30_000;
    while ((await running()) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await running()).toBe(0);
  });
});
