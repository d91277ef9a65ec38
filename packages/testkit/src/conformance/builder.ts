import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LaunchError, parseLaunchSpec, type BuildRequest, type BuildResult, type Builder, type Registry } from '@launch/core';

export interface BuilderFixture {
  builder: Builder;
  /**
   * An image the builder can build `FROM` without pulling, holding `sh`, `echo`, `cat` and `sleep`
   * (for example one made from busybox-static).
   */
  baseImage: string;
  /** Where images go. When given, the suite checks that a built image is in it. */
  registry?: Registry;
  /** Without a registry: whether the builder's own store (the engine) has `imageUri`. */
  imageExists?(imageUri: string): Promise<boolean>;
  /** Upper bound for any single build in the suite. Default 120 000 ms. */
  timeoutMs?: number;
  cleanup?(): Promise<void> | void;
}

const ctx = (signal?: AbortSignal) => ({ logger: { debug() {}, info() {}, warn() {}, error() {} }, signal });

/**
 * The Builder contract, checked against one backend: a small context is built (and pushed when
 * the fixture has a registry), the same context again is reused (`cached: true`), a change gives a
 * new image, a failing `RUN` fails at stage `build` with the output's tail, and `ctx.signal` stops a
 * running build. Contexts are Dockerfiles given as `overrides.dockerfile`, each with a fresh marker,
 * so the first build of each test is never a cache hit.
 *
 * @example
 * describeBuilder('docker', async () => ({ builder: createDockerBuilder({ socketPath }), baseImage: 'localhost/busybox:test', registry }));
 */
export function describeBuilder(name: string, setup: () => Promise<BuilderFixture> | BuilderFixture): void {
  describe(`Builder conformance: ${name}`, () => {
    let fx!: BuilderFixture;
    let timeoutMs = 120_000;
    let workDir!: string;

    beforeAll(async () => {
      fx = await setup();
      timeoutMs = fx.timeoutMs ?? timeoutMs;
      workDir = await mkdtemp(join(tmpdir(), 'launch-builder-conformance-'));
    });

    afterAll(async () => {
      if (workDir) await rm(workDir, { recursive: true, force: true });
      await fx?.cleanup?.();
    });

    function within<T>(promise: Promise<T>, what: string): Promise<T> {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      });
      return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
    }

    /** A context directory: a Dockerfile from the base image plus files. */
    async function context(steps: string[], files: Record<string, string> = {}): Promise<string> {
      const dir = join(workDir, randomBytes(6).toString('hex'));
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'Dockerfile'), [`FROM ${fx.baseImage}`, ...steps, ''].join('\n'));
      for (const [path, content] of Object.entries(files)) await writeFile(join(dir, path), content);
      return dir;
    }

    function request(contextDir: string, onProgress?: (line: string) => void): BuildRequest {
      const id = randomBytes(4).toString('hex');
      return {
        spec: parseLaunchSpec({ overrides: { dockerfile: 'Dockerfile', entry_point: ['sh', 'run.sh'] } }),
        runId: `conf-${id}`,
        itemId: `item-${id}`,
        contextDir,
        registry: fx.registry,
        onProgress,
      };
    }

    async function present(imageUri: string): Promise<boolean | undefined> {
      if (fx.registry) return fx.registry.imageExists(imageUri, ctx());
      return fx.imageExists?.(imageUri);
    }

    it('declares its contract version and name, and verify() passes', async () => {
      expect(fx.builder.specificationVersion).toBe('v1');
      expect(fx.builder.name).toMatch(/\S/);
      if (fx.builder.verify) await expect(within(fx.builder.verify(ctx()), 'verify()')).resolves.toBeUndefined();
    });

    it('passes a job that names its image through without building', async () => {
      const result = await within(
        fx.builder.build({ spec: parseLaunchSpec({ docker: { docker_image: fx.baseImage } }), runId: 'conf-image', itemId: 'item-image' }, ctx()),
        'build()',
      );
      expect(result).toMatchObject({ imageUri: fx.baseImage, cached: true });
    });

    describe('one context built twice, then changed', () => {
      const marker = `built-${randomBytes(6).toString('hex')}`;
      let dir!: string;
      let first!: BuildResult;

      it('builds a small context, reports its output, and puts the image where it belongs', async () => {
        dir = await context(['COPY data.txt /data.txt', `RUN echo ${marker} && cat /data.txt`], { 'data.txt': 'one\n', 'run.sh': 'cat /data.txt\n' });
        const lines: string[] = [];
        first = await within(
          fx.builder.build(
            request(dir, (l) => lines.push(l)),
            ctx(),
          ),
          'the first build',
        );
        expect(first.cached).toBe(false);
        expect(first.imageUri).toMatch(/:[\w][\w.-]{0,127}$/);
        expect(lines.some((l) => l.includes(marker))).toBe(true);
        const there = await present(first.imageUri);
        if (there !== undefined) expect(there).toBe(true);
      });

      it('builds the same context again as a cache hit with the same image', async () => {
        const lines: string[] = [];
        const second = await within(
          fx.builder.build(
            request(dir, (l) => lines.push(l)),
            ctx(),
          ),
          'the second build',
        );
        expect(second).toMatchObject({ imageUri: first.imageUri, cached: true });
        // Nothing ran: the RUN step's output never appeared.
        expect(lines.some((l) => l.includes(marker))).toBe(false);
      });

      it('gives a changed context a new image', async () => {
        await writeFile(join(dir, 'data.txt'), 'two\n');
        const third = await within(fx.builder.build(request(dir), ctx()), 'the build after a change');
        expect(third.cached).toBe(false);
        expect(third.imageUri).not.toBe(first.imageUri);
      });
    });

    it('fails a failing RUN at stage build with the tail of the output and a hint', async () => {
      const marker = `failing-${randomBytes(6).toString('hex')}`;
      const dir = await context([`RUN echo ${marker} && exit 7`]);
      const error = await within(
        fx.builder.build(request(dir), ctx()).then(
          () => undefined,
          (e: unknown) => e,
        ),
        'the failing build',
      );
      expect(LaunchError.isInstance(error)).toBe(true);
      const launchError = error as LaunchError;
      expect(launchError.stage).toBe('build');
      expect(launchError.category).toBe('BuildFailed');
      expect(launchError.message).toContain(marker);
      expect(launchError.hint).toMatch(/\S/);
    });

    it('stops a running build when ctx.signal aborts', async () => {
      const marker = `aborting-${randomBytes(6).toString('hex')}`;
      const dir = await context([`RUN echo ${marker} && sleep 300`]);
      const controller = new AbortController();
      const lines: string[] = [];
      const outcome = fx.builder
        .build(
          request(dir, (line) => {
            lines.push(line);
            if (line.includes(marker)) controller.abort();
          }),
          ctx(controller.signal),
        )
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      const error = await within(outcome, 'the aborted build to end');
      expect(controller.signal.aborted).toBe(true);
      expect(LaunchError.isInstance(error)).toBe(true);
      expect((error as LaunchError).stage).toBe('build');
    });

    it('refuses at once when ctx.signal has already fired', async () => {
      const dir = await context(['RUN echo never']);
      const controller = new AbortController();
      controller.abort();
      const error = await within(
        fx.builder.build(request(dir), ctx(controller.signal)).then(
          () => undefined,
          (e: unknown) => e,
        ),
        'the pre-aborted build',
      );
      expect(LaunchError.isInstance(error)).toBe(true);
      expect((error as LaunchError).stage).toBe('build');
    });
  });
}
