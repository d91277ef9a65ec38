import { z } from 'zod';
import type { Logger } from '@launch/core';
import { loggerOption, parseRunnerOptions } from '../options.js';

export const localProcessRunnerOptionsSchema = z
  .object({
    /** Directory for per-run log files (`<logDir>/<itemId>.log`); created when missing. */
    logDir: z.string().min(1, 'a directory path'),
    /** Time between SIGTERM and SIGKILL when a run is cancelled. Default 10 000 ms. */
    killGracePeriodMs: z.number().int().min(0).default(10_000),
    /** Most bytes `logs()` returns and `logTail` keeps. Default 64 KiB. */
    maxLogTailBytes: z
      .number()
      .int()
      .min(1024)
      .default(64 * 1024),
    /** Most lines kept in a failed run's `logTail`. Default 100. */
    logTailLines: z.number().int().min(1).default(100),
    /**
     * SIGKILL the process groups of runs still alive when the agent process exits without having
     * cancelled them (a crash or a bare `process.exit()`), so no job is left orphaned. Default true.
     */
    killOnExit: z.boolean().default(true),
    /**
     * Kill the process groups of live runs even when the agent process is killed outright (`kill -9`,
     * the OOM killer), which no exit handler survives: a small watchdog process, started with the first
     * run, holds the groups and kills them (SIGTERM, then SIGKILL after `killGracePeriodMs`) when its pipe
     * from the agent closes. Turn it on when an item whose agent died may go to another agent, so a job
     * never runs on beside its second run. Default false (the launch-agent binary turns it on).
     */
    orphanGuard: z.boolean().default(false),
    logger: loggerOption,
  })
  .strict();

export type LocalProcessRunnerOptions = z.input<typeof localProcessRunnerOptionsSchema>;
export type ResolvedLocalProcessRunnerOptions = z.output<typeof localProcessRunnerOptionsSchema> & { logger: Logger };

/** Validates the factory options; throws a LaunchValidationError naming each bad field. */
export function parseLocalProcessRunnerOptions(input: unknown): ResolvedLocalProcessRunnerOptions {
  return parseRunnerOptions(localProcessRunnerOptionsSchema, input, 'local-process runner options');
}
