import { z } from 'zod';
import { LaunchValidationError, silentLogger, type Agent, type Logger, type Runner } from '@launch/core';
import { closest, zodIssues } from '@launch/core/internal';
import type { LaunchMetrics } from './metrics.js';

/** What the health server needs of an agent: its public events and its snapshot. */
export type ObservedAgent = Pick<Agent, 'on' | 'snapshot'>;

const hasMethods = (value: unknown, methods: string[]): boolean =>
  typeof value === 'object' && value !== null && methods.every((m) => typeof (value as Record<string, unknown>)[m] === 'function');

const loggerOption = z
  .custom<Logger>((v) => hasMethods(v, ['debug', 'info', 'warn', 'error']), 'a pino-compatible logger (debug, info, warn, error)')
  .optional();

export const healthServerOptionsSchema = z
  .object({
    /** The agent to watch (from `createAgent()`): only its events and `snapshot()` are used. */
    agent: z.custom<ObservedAgent>((v) => hasMethods(v, ['on', 'snapshot']), 'an agent from createAgent() (with on() and snapshot())'),
    /** TCP port; 0 picks a free one (read it back from `url`/`port`). */
    port: z.number().int().min(0).max(65535),
    /** Address to bind. Default 127.0.0.1: nothing outside the host sees the endpoints unless asked. */
    host: z.string().min(1, 'a host name or address').default('127.0.0.1'),
    /** Metrics to serve, when the caller made them first (to instrument the queue source). Default: new ones. */
    metrics: z.custom<LaunchMetrics>((v) => hasMethods(v, ['observeAgent', 'instrumentSource', 'text']), 'metrics from createLaunchMetrics()').optional(),
    /** Also export Node's process metrics (`process_*`, `nodejs_*`) when the server makes its own metrics. Default false. */
    processMetrics: z.boolean().optional(),
    /** The agent's runners: those with informers (Kubernetes) report their watch counters. */
    runners: z.array(z.custom<Runner>((v) => typeof v === 'object' && v !== null, 'a runner')).default([]),
    /** The agent's poll interval (ms), from which the liveness limit is derived. Default 10 000 (W&B's). */
    pollIntervalMs: z.number().positive().default(10_000),
    /** `/healthz` fails when the loop has not turned for this long (ms). Default max(60 000, 4 × pollIntervalMs). */
    staleAfterMs: z.number().int().positive().optional(),
    /**
     * Backends to verify before `/readyz` answers 200 (the builder's `verify()`: its context store, cluster or engine):
     * each runs once at start and, while it fails, again every `recheckMs`. `/readyz` names the one that fails.
     */
    checks: z
      .array(
        z
          .object({
            name: z.string().min(1, 'a name for the check'),
            run: z.custom<(signal: AbortSignal) => Promise<void>>((v) => typeof v === 'function', 'a function (signal) => Promise<void>'),
          })
          .strict(),
      )
      .default([]),
    /** How often a failed check runs again (ms). Default 30 000. */
    recheckMs: z.number().int().positive().default(30_000),
    logger: loggerOption,
    /** Clock in ms (tests move it). Default `Date.now`. */
    now: z.custom<() => number>((v) => typeof v === 'function', 'a function returning milliseconds').optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.metrics && o.processMetrics !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['processMetrics'],
        message: 'processMetrics applies only when the server makes its own metrics: pass it to createLaunchMetrics() instead',
      });
    }
  });

export type HealthServerOptions = z.input<typeof healthServerOptionsSchema>;

export interface ResolvedHealthServerOptions extends Omit<z.output<typeof healthServerOptionsSchema>, 'logger' | 'now' | 'staleAfterMs'> {
  logger: Logger;
  now: () => number;
  staleAfterMs: number;
}

/** Validates the options; throws a LaunchValidationError (code `health.invalid_options`) naming each bad field. */
export function parseHealthServerOptions(input: unknown): ResolvedHealthServerOptions {
  const result = healthServerOptionsSchema.safeParse(input ?? {});
  if (!result.success) {
    const keys = Object.keys(healthServerOptionsSchema.shape);
    throw new LaunchValidationError({
      code: 'health.invalid_options',
      stage: 'agent',
      subject: 'health server options',
      issues: zodIssues(result.error, input, (key) => closest(key, keys)),
    });
  }
  const o = result.data;
  return {
    ...o,
    logger: o.logger ?? silentLogger,
    now: o.now ?? Date.now,
    staleAfterMs: o.staleAfterMs ?? Math.max(60_000, 4 * o.pollIntervalMs),
  };
}
