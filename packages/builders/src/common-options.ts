import { z } from 'zod';
import { LaunchValidationError, type Logger, type Registry } from '@launch/core';
import { closest, zodIssues } from '@launch/core/internal';

/** Options every builder shares, as zod fields, so the docker and kaniko builders check them alike. */

const isLogger = (value: unknown): value is Logger =>
  typeof value === 'object' && value !== null && ['debug', 'info', 'warn', 'error'].every((m) => typeof (value as Record<string, unknown>)[m] === 'function');

/** `host[:port]/` at the start of an image reference. */
const HOST_PORT = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?\//;

/** A Registry option; `withCredentials` when the builder itself logs in to push (the docker builder). */
export function registryOption(withCredentials: boolean) {
  return z
    .custom<Registry>(
      (value: unknown) =>
        typeof value === 'object' &&
        value !== null &&
        typeof (value as Registry).uri === 'string' &&
        typeof (value as Registry).imageExists === 'function' &&
        (!withCredentials || typeof (value as Registry).credentials === 'function'),
      withCredentials ? 'a Registry (uri, credentials(), imageExists())' : 'a Registry (uri, imageExists())',
    )
    .optional();
}

export const commonBuilderOptions = {
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
  /** Most files, directories and links a build context may hold. Default 200 000. */
  maxContextEntries: z.number().int().min(1).default(200_000),
  /** Build output lines kept for a failure report. Default 30. */
  tailLines: z.number().int().min(1).max(10_000).default(30),
  logger: z.custom<Logger>(isLogger, 'a pino-compatible logger (debug, info, warn, error)').optional(),
};

/** Parses a builder's factory options; throws a LaunchValidationError (`builder.invalid_options`) naming each bad field. */
export function parseBuilderOptions<S extends z.ZodType>(schema: S, keys: string[], input: unknown, subject: string): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new LaunchValidationError({
    code: 'builder.invalid_options',
    stage: 'agent',
    subject,
    issues: zodIssues(result.error, input, (key) => closest(key, keys)),
  });
}
