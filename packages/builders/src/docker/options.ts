import { z } from 'zod';
import { LaunchValidationError, silentLogger, type Logger, type Registry } from '@launch/core';
import { closest, zodIssues } from '@launch/core/internal';

const isLogger = (value: unknown): value is Logger =>
  typeof value === 'object' && value !== null && ['debug', 'info', 'warn', 'error'].every((m) => typeof (value as Record<string, unknown>)[m] === 'function');

const isRegistry = (value: unknown): value is Registry =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as Registry).uri === 'string' &&
  typeof (value as Registry).credentials === 'function' &&
  typeof (value as Registry).imageExists === 'function';

const HOST_PORT = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?\//;

export const dockerBuilderOptionsSchema = z
  .object({
    /** The engine's unix socket. Default: `dockerHost`, else `$DOCKER_HOST`, else `/var/run/docker.sock`. */
    socketPath: z.string().min(1, 'a socket path').optional(),
    /** A `DOCKER_HOST`-style address: `unix:///path` or `tcp://host:port`. */
    dockerHost: z
      .string()
      .regex(/^(unix:\/\/\/.+|tcp:\/\/[^/\s]+:\d+\/?)$/, 'unix:///path/to/socket or tcp://host:port')
      .optional(),
    /**
     * W&B's `builder.destination`: the repository images are pushed to (`host[:port]/path`, no tag).
     * Overrides the registry's `uri` for naming; with no registry, images are pushed without credentials.
     */
    destination: z
      .string()
      .min(1)
      .transform((s) => s.replace(/^https?:\/\//, '').replace(/\/+$/, ''))
      .superRefine((s, ctx) => {
        if (s.slice(s.lastIndexOf('/') + 1).includes(':') || s.includes('@')) {
          ctx.addIssue({ code: 'custom', message: 'a repository without a tag or digest (the builder adds the source-hash tag)' });
        } else if (!/^[a-z0-9._\-/]+$/.test(s.replace(HOST_PORT, ''))) {
          ctx.addIssue({ code: 'custom', message: 'a repository of lower-case letters, digits, ".", "_", "-" and "/" after an optional host[:port]/' });
        }
      })
      .optional(),
    /** The registry to check for existing images and push to (a request's `registry` wins). */
    registry: z.custom<Registry>(isRegistry, 'a Registry (uri, credentials(), imageExists())').optional(),
    /** `--platform`, e.g. `linux/amd64`. */
    platform: z
      .string()
      .regex(/^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/, 'os/arch[/variant], e.g. linux/amd64')
      .optional(),
    /** `--build-arg` values passed to every build. */
    buildArgs: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a build argument name'), z.string()).default({}),
    /** Python `major.minor` of generated Dockerfiles when a job names none. Default `3.10`. */
    pythonVersion: z
      .string()
      .regex(/^\d+\.\d+$/, 'major.minor, e.g. 3.11')
      .default('3.10'),
    /** User name in generated Dockerfiles (fixed, so the Dockerfile and its tag are the same on every agent). */
    dockerUser: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'a Linux user name')
      .default('launch'),
    /**
     * gzip level of the context sent to the engine (1–9), or 0 for a plain tar. Default: a plain tar
     * to a unix socket (as the docker CLI sends it: compressing for a local engine only costs CPU on
     * both sides), level 1 to a `tcp://` engine.
     */
    gzipLevel: z.number().int().min(0).max(9).optional(),
    /** Most files, directories and links a build context may hold. Default 200 000. */
    maxContextEntries: z.number().int().min(1).default(200_000),
    /** Build output lines kept for a failure report. Default 30. */
    tailLines: z.number().int().min(1).max(10_000).default(30),
    logger: z.custom<Logger>(isLogger, 'a pino-compatible logger (debug, info, warn, error)').optional(),
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
  const result = dockerBuilderOptionsSchema.safeParse(input ?? {});
  if (!result.success) {
    const keys = Object.keys(dockerBuilderOptionsSchema.shape);
    throw new LaunchValidationError({
      code: 'builder.invalid_options',
      stage: 'agent',
      subject: 'docker builder options',
      issues: zodIssues(result.error, input, (key) => closest(key, keys)),
    });
  }
  return { ...result.data, logger: result.data.logger ?? silentLogger };
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
