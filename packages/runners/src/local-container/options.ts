import { z } from 'zod';
import type { Logger } from '@launch/core';
import { loggerOption, parseRunnerOptions } from '../options.js';

export const localContainerRunnerOptionsSchema = z
  .object({
    /** Directory for per-run log files (`<logDir>/<itemId>.log`); created when missing. */
    logDir: z.string().min(1, 'a directory path'),
    /**
     * The Docker Engine's unix socket. Default: `dockerHost`, else `$DOCKER_HOST`, else `/var/run/docker.sock`.
     */
    socketPath: z.string().min(1, 'a socket path').optional(),
    /**
     * The engine address in `DOCKER_HOST` syntax: `unix:///path/docker.sock` or `tcp://host:port` (plain HTTP;
     * TLS is not supported). Default `$DOCKER_HOST`. Give `socketPath` or `dockerHost`, not both.
     */
    dockerHost: z.string().min(1, 'a DOCKER_HOST address').optional(),
    /** Time between the stop signal and SIGKILL when a run is cancelled. Default 10 000 ms. */
    killGracePeriodMs: z.number().int().min(0).default(10_000),
    /**
     * Network mode of containers when `resource_args` names none. Default `host`: the engines this agent is
     * built for may have no bridge network (`dockerd --bridge=none`), and W&B's agent also uses host
     * networking when its server is on the same machine.
     */
    network: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, 'a network name or mode such as host, none or bridge')
      .default('host'),
    /**
     * Start a small detached watchdog process that stops (then removes, or renames when `rm: false`) the
     * containers this runner started when the agent process dies without cleaning up (SIGKILL, OOM). Off by
     * default in the library; with it off, a restarted agent adopts the containers instead.
     */
    orphanGuard: z.boolean().default(false),
    /** Pull an image the engine does not have (`missing`, anonymously) or fail at once (`never`). Default `missing`. */
    pull: z.enum(['missing', 'never']).default('missing'),
    /** Agent name for the `launch.dev/agent` label; default the run request's `agentName`. */
    agentName: z.string().min(1).optional(),
    /** Most bytes `logs()` returns and `logTail` keeps. Default 64 KiB. */
    maxLogTailBytes: z
      .number()
      .int()
      .min(1024)
      .default(64 * 1024),
    /** Most lines kept in a failed run's `logTail`. Default 100. */
    logTailLines: z.number().int().min(1).default(100),
    logger: loggerOption,
  })
  .strict()
  .refine((o) => !(o.socketPath && o.dockerHost), { message: 'give socketPath or dockerHost, not both', path: ['dockerHost'] });

export type LocalContainerRunnerOptions = z.input<typeof localContainerRunnerOptionsSchema>;
export type ResolvedLocalContainerRunnerOptions = z.output<typeof localContainerRunnerOptionsSchema> & { logger: Logger };

/** Validates the factory options; throws a LaunchValidationError naming each bad field. */
export function parseLocalContainerRunnerOptions(input: unknown): ResolvedLocalContainerRunnerOptions {
  return parseRunnerOptions(
    localContainerRunnerOptionsSchema as unknown as z.ZodObject,
    input,
    'local-container runner options',
  ) as ResolvedLocalContainerRunnerOptions;
}
