import { LaunchError, type Builder, type BuildRequest, type BuildResult } from '@launch/core';
import { specImage } from '@launch/core/internal';

/**
 * The builder used when `builder.type` is `noop` or unset (W&B's `NoOpBuilder`): jobs that name an
 * image (`docker.docker_image` or `image_uri`) pass through unchanged, anything that would need a
 * build fails with a hint on how to configure one.
 *
 * @example
 * const builder = createNoopBuilder();
 * await builder.build({ spec: { docker: { docker_image: 'python:3.12' } }, runId, itemId }, { logger });
 * // → { imageUri: 'python:3.12', cached: true }
 */
export function createNoopBuilder(): Builder {
  return {
    specificationVersion: 'v1',
    name: 'noop',
    async verify() {},
    async build(request: BuildRequest): Promise<BuildResult> {
      const image = specImage(request.spec);
      if (image) return { imageUri: image, cached: true };
      throw new LaunchError({
        code: 'build.no_builder',
        stage: 'build',
        category: 'BuildFailed',
        message: `job ${request.spec.job ?? request.runId} needs an image built, but no builder is configured`,
        hint: 'set `builder.type` (docker or kaniko) in launch-config.yaml, or give the job an image (`docker.docker_image`)',
      });
    },
  };
}
