import { describe, expect, it } from 'vitest';
import { LaunchError, parseLaunchSpec, silentLogger } from '@launch/core';
import { createNoopBuilder } from './builder.js';

const ctx = { logger: silentLogger };
const request = (spec: unknown) => ({ spec: parseLaunchSpec(spec), runId: 'run-1', itemId: 'item-1' });

describe('noop builder', () => {
  const builder = createNoopBuilder();

  it('declares itself', async () => {
    expect(builder).toMatchObject({ specificationVersion: 'v1', name: 'noop' });
    await expect(builder.verify!(ctx)).resolves.toBeUndefined();
  });

  it('passes an image job through as cached', async () => {
    await expect(builder.build(request({ docker: { docker_image: 'python:3.12-slim' } }), ctx)).resolves.toEqual({
      imageUri: 'python:3.12-slim',
      cached: true,
    });
    await expect(builder.build(request({ image_uri: 'ghcr.io/acme/train:v1' }), ctx)).resolves.toEqual({
      imageUri: 'ghcr.io/acme/train:v1',
      cached: true,
    });
  });

  it('refuses a job that needs a build, telling the user how to configure a builder', async () => {
    const error = await builder
      .build(request({ job: 'acme/proj/job-train:v3', overrides: { entry_point: ['python', 'train.py'] } }), ctx)
      .catch((e: unknown) => e);
    expect(LaunchError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'build.no_builder', stage: 'build', category: 'BuildFailed', retryable: false });
    expect((error as LaunchError).message).toContain('acme/proj/job-train:v3');
    expect((error as LaunchError).hint).toContain('builder.type');
    expect((error as LaunchError).hint).toContain('docker.docker_image');
  });
});
