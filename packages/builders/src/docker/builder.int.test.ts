import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { LaunchError, parseLaunchSpec, silentLogger, type Registry } from '@launch/core';
import { dockerService, registryServices, serviceAvailable } from '@launch/testkit';
// Until @launch/testkit's index exports it (one line for the lead), the suite is imported from its file.
import { describeBuilder } from '@launch/testkit';
import { createDockerBuilder } from './builder.js';
import { wandbTag } from '../context/tag.js';

const docker = dockerService();
const registries = registryServices();
const available = serviceAvailable('the test Docker engine and registries', !!docker && !!registries);

/**
 * A tiny Registry for these tests (the shared one lives in @launch/registries): HEAD on the
 * manifest, with Basic credentials when given, against the real Distribution registry.
 */
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
      const path = imageUri.slice(host.length + 1, colon);
      const headers: Record<string, string> = {
        accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json',
      };
      if (credentials) headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
      const response = await fetch(`http://${host}/v2/${path}/manifests/${imageUri.slice(colon + 1)}`, { method: 'HEAD', headers });
      if (response.status === 200) return true;
      if (response.status === 404) return false;
      throw new Error(`HEAD manifest: ${response.status}`);
    },
  };
  return registry;
}

const scratch = mkdtempSync(join(tmpdir(), 'launch-docker-builder-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
function code(files: Record<string, string>): string {
  const dir = join(scratch, randomBytes(6).toString('hex'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}
const ctx = { logger: silentLogger };
const repo = () => `launch-test/${randomBytes(4).toString('hex')}`;

describe.runIf(available)('docker builder on the real engine', () => {
  describeBuilder('docker, pushing to a Distribution registry', () => ({
    builder: createDockerBuilder({ socketPath: docker!.socketPath }),
    baseImage: docker!.baseImage,
    registry: testRegistry(registries!.plain, repo()),
  }));

  describeBuilder('docker, engine only (no registry)', () => {
    const engine = new Docker({ socketPath: docker!.socketPath });
    return {
      builder: createDockerBuilder({ socketPath: docker!.socketPath }),
      baseImage: docker!.baseImage,
      imageExists: (uri: string) =>
        engine
          .getImage(uri)
          .inspect()
          .then(
            () => true,
            () => false,
          ),
    };
  });

  it('passes build args and the platform, and skips the build with one registry request when the tag exists', async () => {
    const registry = testRegistry(registries!.plain, repo());
    const builder = createDockerBuilder({ socketPath: docker!.socketPath, buildArgs: { GREETING: 'from-build-args' }, platform: 'linux/amd64' });
    const dir = code({ Dockerfile: `FROM ${docker!.baseImage}\nARG GREETING=none\nRUN echo "greeting=$GREETING"\n` });
    const spec = parseLaunchSpec({ overrides: { dockerfile: 'Dockerfile', entry_point: ['sh'] } });
    const lines: string[] = [];
    const first = await builder.build({ spec, runId: 'r1', itemId: 'i1', contextDir: dir, registry, onProgress: (l) => lines.push(l) }, ctx);
    expect(lines).toContain('greeting=from-build-args');
    expect(first).toMatchObject({ cached: false, tagScheme: 'content', dockerfileSource: 'overrides.dockerfile' });
    registry.heads = 0;
    const second = await builder.build({ spec, runId: 'r2', itemId: 'i2', contextDir: dir, registry }, ctx);
    expect(second).toMatchObject({ imageUri: first.imageUri, cached: true });
    expect(registry.heads).toBe(1);
    // Other build args make another image.
    const other = createDockerBuilder({ socketPath: docker!.socketPath, buildArgs: { GREETING: 'other' }, platform: 'linux/amd64' });
    expect((await other.build({ spec, runId: 'r3', itemId: 'i3', contextDir: dir, registry }, ctx)).imageUri).not.toBe(first.imageUri);
  });

  it('pushes with the registry credentials, and a wrong password fails with RegistryAuth without leaking it', async () => {
    const dir = code({ Dockerfile: `FROM ${docker!.baseImage}\nRUN echo ${randomBytes(4).toString('hex')}\n` });
    const spec = parseLaunchSpec({ overrides: { dockerfile: 'Dockerfile', entry_point: ['sh'] } });
    const path = repo();
    const good = testRegistry(registries!.basic, path, { username: registries!.username, password: registries!.password });
    const builder = createDockerBuilder({ socketPath: docker!.socketPath });
    const built = await builder.build({ spec, runId: 'r1', itemId: 'i1', contextDir: dir, registry: good }, ctx);
    expect(built.cached).toBe(false);
    expect(await good.imageExists(built.imageUri, ctx)).toBe(true);

    const wrongPassword = `wrong-${randomBytes(8).toString('hex')}`;
    const bad = testRegistry(registries!.basic, repo(), { username: registries!.username, password: wrongPassword });
    bad.imageExists = async () => false; // reach the push (the HEAD would already be refused)
    const lines: string[] = [];
    const error = await builder
      .build({ spec, runId: 'r2', itemId: 'i2', contextDir: dir, registry: bad, onProgress: (l) => lines.push(l) }, ctx)
      .catch((e: unknown) => e);
    expect(LaunchError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'build.push_denied', stage: 'build', category: 'RegistryAuth' });
    expect((error as LaunchError).message).toContain(registries!.basic);
    const everything = [(error as LaunchError).message, (error as LaunchError).hint, ...lines].join('\n');
    expect(everything).not.toContain(wrongPassword);
    expect(everything).not.toContain(registries!.password);
  });

  it('names the packages pip could not find in the hint', async () => {
    const dir = code({
      Dockerfile: `FROM ${docker!.baseImage}\nRUN echo "ERROR: Could not find a version that satisfies the requirement nosuchpkg==9.9" && echo "ERROR: No matching distribution found for nosuchpkg==9.9" && exit 1\n`,
    });
    const builder = createDockerBuilder({ socketPath: docker!.socketPath });
    const error = await builder
      .build({ spec: parseLaunchSpec({ overrides: { dockerfile: 'Dockerfile', entry_point: ['sh'] } }), runId: 'r', itemId: 'i', contextDir: dir }, ctx)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'build.failed', stage: 'build', category: 'BuildFailed' });
    expect((error as LaunchError).hint).toContain('pip could not find nosuchpkg==9.9');
    expect((error as LaunchError).message).toContain('returned a non-zero code: 1');
  });

  it('builds from a Dockerfile.wandb beside the entry point, honouring .dockerignore in the engine', async () => {
    const dir = code({
      'jobs/train/Dockerfile.wandb': `FROM ${docker!.baseImage}\nCOPY . /ctx\nRUN ls /ctx && test -e /ctx/main.sh && test ! -e /ctx/secret.env && test ! -e /ctx/data\n`,
      'jobs/train/main.sh': 'echo main\n',
      'jobs/train/.dockerignore': '*.env\ndata\n',
      'jobs/train/secret.env': 'TOKEN=x\n',
      'jobs/train/data/big.bin': 'x',
      'README.md': '',
    });
    const builder = createDockerBuilder({ socketPath: docker!.socketPath });
    const result = await builder.build(
      { spec: parseLaunchSpec({ overrides: { entry_point: ['sh', 'jobs/train/main.sh'] } }), runId: 'r', itemId: 'i', contextDir: dir },
      ctx,
    );
    expect(result).toMatchObject({ cached: false, dockerfileSource: 'Dockerfile.wandb', entryPoint: ['sh', 'main.sh'] });
  });

  it("keeps W&B's tag for a job pinned to an artifact version", async () => {
    const dockerfile = `FROM ${docker!.baseImage}\nRUN echo ${randomBytes(4).toString('hex')}\n`;
    const dir = code({ Dockerfile: dockerfile });
    const registry = testRegistry(registries!.plain, repo());
    const builder = createDockerBuilder({ socketPath: docker!.socketPath });
    const result = await builder.build(
      {
        spec: parseLaunchSpec({ job: 'acme/proj/job-train:v3', overrides: { dockerfile: 'Dockerfile', entry_point: ['sh'] } }),
        runId: 'r',
        itemId: 'i',
        contextDir: dir,
        registry,
      },
      ctx,
    );
    expect(result).toMatchObject({
      tagScheme: 'wandb',
      tag: wandbTag('job-train:v3:vv3', dockerfile),
      imageUri: `${registry.uri}:${wandbTag('job-train:v3:vv3', dockerfile)}`,
    });
    expect(result.contextDigest).toBeUndefined();
  });

  it('names the image after the job when there is no registry or destination, and refuses an invalid destination', async () => {
    const dir = code({ Dockerfile: `FROM ${docker!.baseImage}\nRUN echo ${randomBytes(4).toString('hex')}\n` });
    const builder = createDockerBuilder({ socketPath: docker!.socketPath });
    const result = await builder.build(
      {
        spec: parseLaunchSpec({ job: 'Acme/Proj/Job Train:latest', overrides: { dockerfile: 'Dockerfile', entry_point: ['sh'] } }),
        runId: 'r',
        itemId: 'i',
        contextDir: dir,
      },
      ctx,
    );
    expect(result.imageUri).toMatch(/^acme__proj__job__train:[0-9a-f]{16}$/);
    const bad = testRegistry(registries!.plain, 'Upper/Case');
    const error = await builder
      .build(
        { spec: parseLaunchSpec({ overrides: { dockerfile: 'Dockerfile', entry_point: ['sh'] } }), runId: 'r', itemId: 'i', contextDir: dir, registry: bad },
        ctx,
      )
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'build.invalid_image_name', stage: 'build' });
    expect((error as LaunchError).message).toContain(`"${registries!.plain}/Upper/Case"`);
  });
});
