import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { LaunchValidationError, type RunRequest, type ValidationIssue } from '@launch/core';
import { zodIssues } from '@launch/core/internal';

/**
 * The shape every runner accepts. The agent builds RunRequests from validated specs, but a runner is a
 * public API too, so it checks its input once more: a malformed request fails with the field named
 * instead of crashing deep inside `spawn` or a Kubernetes manifest.
 */
const noNul = (what: string) => z.string().refine((s) => !s.includes('\0'), { message: `${what} must not contain a NUL character` });

const runRequestSchema = z.object({
  runId: z.string().min(1, 'a non-empty run id'),
  itemId: z.string().min(1, 'a non-empty queue item id').max(512, 'a queue item id of at most 512 characters'),
  queue: z.string(),
  agentName: z.string(),
  spec: z.record(z.string(), z.unknown()),
  image: z.string().min(1).optional(),
  entryPoint: z.array(noNul('an entry point element')),
  args: z.array(noNul('an argument')),
  env: z.record(z.string(), z.string()),
  resourceArgs: z.record(z.string(), z.unknown()),
  workingDir: noNul('a working directory').optional(),
  attachOnly: z.boolean().optional(),
  code: z
    .object({
      dir: noNul('a code directory').refine((d) => isAbsolute(d), { message: 'an absolute directory of this machine' }),
      mountPath: noNul('a mount path').refine((d) => d.startsWith('/'), { message: 'an absolute path inside the run' }),
      source: z
        .object({
          kind: z.literal('wandb-job'),
          // The resolved version (`entity/project/name:v3`): it becomes an argument of a command in the run's pod.
          job: z.string().regex(/^[^/\s\0]+\/[^/\s\0]+\/[^/:\s\0]+:[^/:\s\0]+$/, 'a W&B job as entity/project/name:version'),
          type: z.enum(['repo', 'artifact']),
          sourceString: noNul('a source string'),
        })
        .strict()
        .optional(),
    })
    .strict()
    .optional(),
});

const ENV_NAME = /^[^=\0]+$/;

/**
 * Validates a RunRequest; throws a LaunchValidationError (code `run.invalid_request`, stage `run`)
 * naming every bad field. Environment values are never quoted in the error: they may be secrets.
 */
export function parseRunRequest(request: unknown): RunRequest {
  const result = runRequestSchema.safeParse(request);
  const issues: ValidationIssue[] = result.success
    ? []
    : zodIssues(result.error, request).map((issue) => (issue.path === 'env' || issue.path.startsWith('env.') ? redactIssue(issue) : issue));
  if (result.success) {
    for (const [name, value] of Object.entries(result.data.env)) {
      if (!ENV_NAME.test(name)) {
        issues.push(envIssue(name, 'a variable name without "=" or NUL', 'an invalid name'));
      } else if (value.includes('\0')) {
        issues.push(envIssue(name, 'a value without NUL characters', 'a value containing NUL'));
      }
    }
  }
  if (issues.length > 0) {
    throw new LaunchValidationError({
      code: 'run.invalid_request',
      stage: 'run',
      subject: 'run request',
      hint: 'the run request is built by the agent from the launch spec; check the spec fields named above',
      issues,
    });
  }
  return request as RunRequest;
}

function envIssue(name: string, expected: string, found: string): ValidationIssue {
  return { path: `env.${JSON.stringify(name)}`, expected, found, message: `expected ${expected}, found ${found}` };
}

/** Keeps the field and expectation but drops the found value, which may be a secret. */
function redactIssue(issue: ValidationIssue): ValidationIssue {
  const found = 'a value of the wrong type (not shown: environment values may be secrets)';
  return { ...issue, found, message: `expected ${issue.expected}, found ${found}` };
}
