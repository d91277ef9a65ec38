import { z } from 'zod';
import { LaunchValidationError, silentLogger, type Logger } from '@launch/core';
import { commonBuilderOptions, parseBuilderOptions, registryOption } from '../common-options.js';

export const dockerBuilderOptionsSchema = z
  .object({
    /** The engine's unix socket. Default: `dockerHost`, else `$DOCKER_HOST`, else `/var/run/docker.sock`. */
    socketPath: z.string().min(1, 'a socket path').optional(),
    /** A `DOCKER_HOST`-style address: `unix:///path` or `tcp://host:port`. */
    dockerHost: z
      .string()
      .regex(/^(unix:\/\/\/.+|tcp:\/\/[^/\s]+:\d+\/?)$/, 'unix:///path/to/socket or tcp://host:port')
      .optional(),
    destination: commonBuilderOptions.destination,
    /** The registry to check for existing images and push to (a request's `registry` wins). */
    registry: registryOption(true),
    /** `--platform`, e.g. `linux/amd64`. */
    platform: z
      .string()
      .regex(/^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/, 'os/arch[/variant], e.g. linux/amd64')
      .optional(),
    buildArgs: commonBuilderOptions.buildArgs,
    pythonVersion: commonBuilderOptions.pythonVersion,
    dockerUser: commonBuilderOptions.dockerUser,
    /**
     * gzip level of the context sent to the engine (1–9), or 0 for a plain tar. Default: a plain tar
     * to a unix socket (as the docker CLI sends it: compressing for a local engine only costs CPU on
     * both sides), level 1 to a `tcp://` engine.
     */
    gzipLevel: z.number().int().min(0).max(9).optional(),
    maxContextEntries: commonBuilderOptions.maxContextEntries,
    tailLines: commonBuilderOptions.tailLines,
    logger: commonBuilderOptions.logger,
  })
  .strict()
  .superRefine((value, ctx) => {
    if (value.socketPath && value.dockerHost) {
      ctx.addIssue({ code: 'custom', path: ['dockerHost'], message: 'give socketPath or dockerHost, not both' });
    }
  });

export type DockerBuilderOptions = z.input<typeof dockerBuilderOptionsSchema>;
export type ResolvedDockerBuilderOptions = z.output<typeof dockerBuilderOptionsSchema> & { logger: Logger };

/** Validates the factory options; throws a LaunchValidationError (code `builder.invalid_options`) naming each bad field. */
export function parseDockerBuilderOptions(input: unknown): ResolvedDockerBuilderOptions {
  const data = parseBuilderOptions(dockerBuilderOptionsSchema, Object.keys(dockerBuilderOptionsSchema.shape), input, 'docker builder options');
  return { ...data, logger: data.logger ?? silentLogger };
}

/** Where the engine listens, from the options or the environment, in dockerode's terms. */
export function engineAddress(
  options: Pick<ResolvedDockerBuilderOptions, 'socketPath' | 'dockerHost'>,
  env: NodeJS.ProcessEnv = process.env,
): { socketPath: string } | { host: string; port: number; protocol: 'http' } {
  if (options.socketPath) return { socketPath: options.socketPath };
  const host = options.dockerHost ?? env.DOCKER_HOST;
  if (!host) return { socketPath: '/var/run/docker.sock' };
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) };
  const tcp = /^tcp:\/\/([^/:\s]+):(\d+)\/?$/.exec(host);
  if (tcp) return { host: tcp[1]!, port: Number(tcp[2]), protocol: 'http' };
  throw new LaunchValidationError({
    code: 'builder.invalid_options',
    stage: 'agent',
    subject: 'docker builder options',
    issues: [
      {
        path: 'DOCKER_HOST',
        expected: 'unix:///path or tcp://host:port',
        found: JSON.stringify(host),
        message: `expected unix:///path or tcp://host:port, found ${JSON.stringify(host)}`,
      },
    ],
  });
}

/**
 * How the context goes to the engine: the `gzipLevel` option when given (0 = plain tar), else a plain
 * tar to a unix socket and gzip level 1 over TCP.
 */
export function contextCompression(gzipLevel: number | undefined, address: ReturnType<typeof engineAddress>): number | false {
  if (gzipLevel !== undefined) return gzipLevel === 0 ? false : gzipLevel;
  return 'socketPath' in address ? false : 1;
}

/** How the engine address reads in messages. */
export function describeAddress(address: ReturnType<typeof engineAddress>): string {
  return 'socketPath' in address ? `unix://${address.socketPath}` : `tcp://${address.host}:${address.port}`;
}
