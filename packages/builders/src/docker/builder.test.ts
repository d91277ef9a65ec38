import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { LaunchError, LaunchValidationError, parseLaunchSpec, silentLogger, type LaunchSpec } from '@launch/core';
import { createDockerBuilder } from './builder.js';
import { contextCompression, engineAddress, parseDockerBuilderOptions } from './options.js';
import { followProgress } from './progress.js';

const ctx = { logger: silentLogger };

describe('docker builder options', () => {
  it('fills defaults', () => {
    expect(parseDockerBuilderOptions({})).toMatchObject({ buildArgs: {}, pythonVersion: '3.10', dockerUser: 'launch', tailLines: 30 });
    expect(parseDockerBuilderOptions({}).gzipLevel).toBeUndefined();
  });

  it('refuses bad options, naming each field', () => {
    let error: unknown;
    try {
      parseDockerBuilderOptions({
        dockerHost: 'ssh://host',
        platform: 'amd64',
        buildArgs: { 'bad name': 'x' },
        destination: 'reg.example.com/team/train:latest',
        gzipLevel: 11,
        sockPath: '/x',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LaunchValidationError);
    const paths = (error as LaunchValidationError).issues.map((i) => i.path).sort();
    expect(paths).toEqual(['buildArgs.bad name', 'destination', 'dockerHost', 'gzipLevel', 'platform', 'sockPath']);
    expect((error as LaunchValidationError).message).toContain('did you mean "socketPath"');
    expect(() => parseDockerBuilderOptions({ destination: 'reg.example.com/Team' })).toThrow(/destination/);
    expect(() => parseDockerBuilderOptions({ socketPath: '/a', dockerHost: 'unix:///b' })).toThrow(/socketPath or dockerHost, not both/);
  });

  it('finds the engine from socketPath, dockerHost or DOCKER_HOST', () => {
    expect(engineAddress({ socketPath: '/a.sock' }, {})).toEqual({ socketPath: '/a.sock' });
    expect(engineAddress({ dockerHost: 'unix:///b.sock' }, {})).toEqual({ socketPath: '/b.sock' });
    expect(engineAddress({}, { DOCKER_HOST: 'tcp://127.0.0.1:2375' })).toEqual({ host: '127.0.0.1', port: 2375, protocol: 'http' });
    expect(engineAddress({}, {})).toEqual({ socketPath: '/var/run/docker.sock' });
    expect(() => engineAddress({}, { DOCKER_HOST: 'ssh://me@host' })).toThrow(/DOCKER_HOST/);
  });

  it('sends a plain tar to a unix socket and gzip -1 over TCP unless gzipLevel says otherwise', () => {
    const unix = engineAddress({ socketPath: '/a.sock' }, {});
    const tcp = engineAddress({}, { DOCKER_HOST: 'tcp://127.0.0.1:2375' });
    expect(contextCompression(undefined, unix)).toBe(false);
    expect(contextCompression(undefined, tcp)).toBe(1);
    expect(contextCompression(0, tcp)).toBe(false);
    expect(contextCompression(6, unix)).toBe(6);
  });

  it('does not load dockerode until the engine is used', () => {
    // A fresh process: the package root and the factory leave dockerode unloaded; verify() loads it.
    const script = [
      "import { createRequire } from 'node:module';",
      `const { createDockerBuilder } = await import(${JSON.stringify(new URL('../index.ts', import.meta.url).pathname)});`,
      'const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((m) => m.includes("/dockerode/"));',
      "const builder = createDockerBuilder({ socketPath: '/tmp/launch-no-such-docker.sock' });",
      'const before = loaded();',
      'await builder.verify({ logger: { debug() {}, info() {}, warn() {}, error() {} } }).catch(() => undefined);',
      'console.log(JSON.stringify({ before, after: loaded() }));',
    ].join('\n');
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: process.cwd() });
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({ before: false, after: true });
  });
});

describe('docker builder without an engine', () => {
  it('verify() names the socket it could not reach', async () => {
    const builder = createDockerBuilder({ socketPath: '/tmp/launch-no-such-docker.sock' });
    const error = await builder.verify!(ctx).catch((e: unknown) => e);
    expect(LaunchError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'builder.engine_unreachable', stage: 'agent', retryable: true });
    expect((error as LaunchError).message).toContain('unix:///tmp/launch-no-such-docker.sock');
    expect((error as LaunchError).hint).toContain('DOCKER_HOST');
  });

  it('passes a job that names its image through, and refuses a job with no code', async () => {
    const builder = createDockerBuilder({ socketPath: '/tmp/launch-no-such-docker.sock' });
    await expect(builder.build({ spec: parseLaunchSpec({ image_uri: 'ghcr.io/a/b:v1' }), runId: 'r', itemId: 'i' }, ctx)).resolves.toMatchObject({
      imageUri: 'ghcr.io/a/b:v1',
      cached: true,
    });
    const error = await builder.build({ spec: parseLaunchSpec({ job: 'a/b/c:v1' }), runId: 'r', itemId: 'i' }, ctx).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'build.no_context', stage: 'build', category: 'BuildFailed' });
  });

  it('refuses a bad docker.user_id or accelerator image before touching the engine', async () => {
    const builder = createDockerBuilder({ socketPath: '/tmp/launch-no-such-docker.sock' });
    const dir = (await import('node:os')).tmpdir();
    // The builder checks again what core's spec parser checks: a request may come from elsewhere.
    const spec = (extra: object) => ({ ...parseLaunchSpec({ overrides: { entry_point: ['python', 'x.py'] } }), ...extra }) as LaunchSpec;
    const uid = await builder
      .build({ spec: spec({ docker: { user_id: '99999999999' } }), runId: 'r', itemId: 'i', contextDir: dir }, ctx)
      .catch((e: unknown) => e);
    expect(uid).toMatchObject({ code: 'build.invalid_user_id', stage: 'build' });
    expect((uid as LaunchError).message).toContain('docker.user_id');
    const accel = await builder
      .build(
        {
          spec: spec({ resource: 'kubernetes', resource_args: { kubernetes: { builder: { cuda: { base_image: 12 } } } } }),
          runId: 'r',
          itemId: 'i',
          contextDir: dir,
        },
        ctx,
      )
      .catch((e: unknown) => e);
    expect((accel as LaunchError).message).toContain('resource_args.kubernetes.builder.cuda.base_image must be a string');
  });
});

describe('engine progress stream', () => {
  it('joins output split across messages and chunks, keeps a tail, and reads errors', () => {
    const lines: string[] = [];
    const follower = followProgress({ tailLines: 3, onLine: (l) => lines.push(l) });
    const stream = [
      { stream: 'Step 1/2 : FROM x\n' },
      { stream: ' ---> abc\nStep 2/2 : RUN pip install -r r.txt\n' },
      { stream: 'ERROR: Could not find a version that satisfies the requirement nosuch==1.0 (from versions: none)\nERROR: No matching distri' },
      { stream: 'bution found for nosuch==1.0\n' },
      {
        errorDetail: { code: 1, message: "The command '/bin/sh -c pip install' returned a non-zero code: 1" },
        error: "The command '/bin/sh -c pip install' returned a non-zero code: 1",
      },
    ]
      .map((m) => JSON.stringify(m))
      .join('\n');
    // Feed in awkward pieces, splitting a multi-byte character too.
    const bytes = Buffer.from(`${stream}\n{"stream":"é\\n"}\n`);
    for (let i = 0; i < bytes.length; i += 7) follower.write(bytes.subarray(i, i + 7));
    follower.end();
    expect(lines.slice(0, 3)).toEqual(['Step 1/2 : FROM x', ' ---> abc', 'Step 2/2 : RUN pip install -r r.txt']);
    expect(lines).toContain('ERROR: No matching distribution found for nosuch==1.0');
    expect(follower.error).toBe("The command '/bin/sh -c pip install' returned a non-zero code: 1");
    expect(follower.tail()).toHaveLength(3);
    expect(follower.tail().at(-1)).toBe('é');
    expect([...follower.failedPackages]).toEqual(['nosuch==1.0']);
  });

  it("recognises W&B's bootstrap report of dropped packages", () => {
    const follower = followProgress({ tailLines: 10 });
    follower.write(`${JSON.stringify({ stream: 'ERROR: Failed to install: foo==1,bar==2. During automated build process.\n' })}\n`);
    follower.end();
    expect([...follower.droppedPackages]).toEqual(['foo==1', 'bar==2']);
    expect(follower.error).toBeUndefined();
  });
});
