import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import yaml from 'js-yaml';
import { LaunchValidationError, normalizeLaunchSpec, type LaunchSpec, type SpecWarning } from '@launch/core';
import { UsageError } from './usage.js';

export interface SpecFlags {
  command: string[];
  env: string[];
  cwd?: string;
  /** The job's code directory (`--context`): becomes `uri: file:///…`. */
  context?: string;
  name?: string;
  project?: string;
  entity?: string;
}

/** Reads a launch spec from a JSON or YAML file; the result is validated by `buildSpec`. */
export async function readSpecFile(path: string, command: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read spec file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, command);
  }
  let raw: unknown;
  try {
    raw = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : yaml.load(text);
  } catch (error) {
    throw new UsageError(`spec file ${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(error as Error).message}`, command);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new UsageError(`spec file ${path} must hold an object`, command);
  return raw as Record<string, unknown>;
}

/** `K=V` pairs into an object; V may contain `=`. */
export function parseEnvPairs(pairs: string[], command: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env expects NAME=VALUE, got "${pair}"`, command);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

/**
 * The spec for `enqueue`: a spec file as the base, then the flags (`-- CMD ARGS` becomes a
 * local-process entry point). Validated like any queue item, so a bad field fails here (a usage
 * error, exit 2) rather than in the agent. W&B's legacy forms are converted, and each conversion or
 * ignored key comes back as a warning for the caller to print.
 */
export function buildSpec(
  base: Record<string, unknown> | undefined,
  flags: SpecFlags,
  cwd: string,
  command: string,
  source?: string,
): { spec: LaunchSpec; warnings: SpecWarning[] } {
  const spec: Record<string, unknown> = { ...(base ?? {}) };
  const overrides: Record<string, unknown> = { ...((spec.overrides as Record<string, unknown> | undefined) ?? {}) };
  if (flags.context !== undefined) {
    const dir = resolve(cwd, flags.context);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--context ${flags.context}: ${dir} is not a directory`, command);
    // The code is built into an image, so the job runs in a container (W&B's default resource).
    spec.uri = pathToFileURL(dir).href;
    spec.resource ??= 'local-container';
    // A Dockerfile at the top of the code is what the user means to build (W&B would generate one instead).
    if (overrides.dockerfile === undefined && existsSync(join(dir, 'Dockerfile'))) overrides.dockerfile = 'Dockerfile';
  }
  if (flags.command.length > 0) {
    overrides.entry_point = flags.command;
    spec.resource ??= 'local-process';
  }
  if (flags.cwd !== undefined) overrides.working_dir = resolve(cwd, flags.cwd);
  if (Object.keys(overrides).length > 0) spec.overrides = overrides;
  const env = parseEnvPairs(flags.env, command);
  if (Object.keys(env).length > 0) spec.env = { ...((spec.env as Record<string, string> | undefined) ?? {}), ...env };
  if (flags.name !== undefined) spec.name = flags.name;
  if (flags.project !== undefined) spec.project = flags.project;
  if (flags.entity !== undefined) spec.entity = flags.entity;
  if (!base && flags.command.length === 0 && flags.context === undefined) {
    throw new UsageError('nothing to run: give a command after "--", code with --context DIR, or a spec with --spec FILE', command);
  }
  try {
    return normalizeLaunchSpec(spec);
  } catch (error) {
    if (!(error instanceof LaunchValidationError)) throw error;
    const where = source ? `${source}: ` : '';
    throw new UsageError(`${where}${error.message}${error.hint ? `\nhint: ${error.hint}` : ''}`, command);
  }
}
