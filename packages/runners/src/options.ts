import { z } from 'zod';
import { LaunchValidationError, silentLogger, type Logger } from '@launch/core';
import { closest, zodIssues } from '@launch/core/internal';

const isLogger = (value: unknown): value is Logger =>
  typeof value === 'object' && value !== null && ['debug', 'info', 'warn', 'error'].every((m) => typeof (value as Record<string, unknown>)[m] === 'function');

/** A pino-compatible logger option, shared by every runner's options schema. */
export const loggerOption = z.custom<Logger>(isLogger, 'a pino-compatible logger (debug, info, warn, error)').optional();

/**
 * Validates a runner factory's options against its (strict) schema; throws a LaunchValidationError
 * (code `runner.invalid_options`) naming each bad field, with a "did you mean" for misspelt keys.
 */
export function parseRunnerOptions<S extends z.ZodObject>(schema: S, input: unknown, subject: string): z.output<S> & { logger: Logger } {
  const result = schema.safeParse(input ?? {});
  if (!result.success) {
    const keys = Object.keys(schema.shape);
    throw new LaunchValidationError({
      code: 'runner.invalid_options',
      stage: 'agent',
      subject,
      issues: zodIssues(result.error, input, (key) => closest(key, keys)),
    });
  }
  const data = result.data as z.output<S> & { logger?: Logger };
  return { ...data, logger: data.logger ?? silentLogger };
}
