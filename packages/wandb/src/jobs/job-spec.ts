import { LaunchError, LaunchValidationError } from '@launch/core';
import { zodIssues } from '@launch/core/internal';
import { posix } from 'node:path';
import { z } from 'zod';

/** A job reference split into its parts. */
export interface JobName {
  entity: string;
  project: string;
  name: string;
  /** Alias or version as written (`latest`, `v3`, `prod`). */
  alias: string;
}

const PART = /^[^/:\s]+$/;
const NAME = /^[\w.-]+$/;

/**
 * Splits `entity/project/name:alias`; `project/name:alias` and `name:alias` take the missing parts
 * from the spec's `entity` and `project`. The alias is required, as W&B's `Api.job` requires it.
 */
export function parseJobName(job: string, defaults: { entity?: string | null; project?: string | null }): JobName {
  const bad = (why: string, hint?: string) =>
    new LaunchError({
      code: 'wandb.job_name_invalid',
      stage: 'agent',
      message: `job ${JSON.stringify(job)} is not a W&B job name: ${why}`,
      hint: hint ?? 'write it as entity/project/name:alias, e.g. acme/vision/train:latest',
    });
  const colon = job.lastIndexOf(':');
  if (colon < 0) throw bad('it has no alias or version', `append one, e.g. ${job}:latest`);
  const alias = job.slice(colon + 1);
  const path = job.slice(0, colon).split('/');
  if (!PART.test(alias)) throw bad(`alias ${JSON.stringify(alias)} is empty or holds '/', ':' or spaces`);
  if (path.length > 3) throw bad('it has more than three /-separated parts');
  const name = path.at(-1)!;
  const project = path.length >= 2 ? path.at(-2)! : (defaults.project ?? '');
  const entity = path.length === 3 ? path[0]! : (defaults.entity ?? '');
  if (!NAME.test(name)) throw bad(`name ${JSON.stringify(name)} may hold only letters, digits, '-', '_' and '.'`);
  if (!project) throw bad('it names no project and the spec has no `project`');
  if (!entity) throw bad('it names no entity and the spec has no `entity`');
  if (!PART.test(project) || !PART.test(entity)) throw bad('the entity or project is empty or holds spaces');
  return { entity, project, name, alias };
}

const text = z.string().min(1);
const optionalText = z.string().nullish();

const sourceCommon = {
  entrypoint: z.array(z.string()).nullish(),
  notebook: z.boolean().nullish(),
  dockerfile: optionalText,
  build_context: optionalText,
  base_image: optionalText,
  args: z.array(z.string()).nullish(),
};

const top = {
  runtime: optionalText,
  input_types: z.unknown().optional(),
  _partial: z.boolean().nullish(),
};

const repoJob = z
  .object({
    source_type: z.literal('repo'),
    source: z.object({ ...sourceCommon, git: z.object({ remote: text, commit: z.string().nullable() }) }).passthrough(),
    ...top,
  })
  .passthrough();
const artifactJob = z.object({ source_type: z.literal('artifact'), source: z.object({ ...sourceCommon, artifact: text }).passthrough(), ...top }).passthrough();
const imageJob = z.object({ source_type: z.literal('image'), source: z.object({ ...sourceCommon, image: text }).passthrough(), ...top }).passthrough();

export type RepoJobJson = z.output<typeof repoJob>;
export type ArtifactJobJson = z.output<typeof artifactJob>;
export type ImageJobJson = z.output<typeof imageJob>;
export type WandbJobJson = RepoJobJson | ArtifactJobJson | ImageJobJson;

export const SOURCE_TYPES = ['repo', 'artifact', 'image'] as const;

/**
 * Parses and checks a job's `wandb-job.json`: JSON, a known `source_type`, the fields that type
 * needs (`source.git.remote`/`commit`, `source.artifact`, `source.image`), and the types of the
 * optional ones. Errors are stage `agent` and name the job and the field.
 */
export function parseJobJson(textContent: string, job: string): WandbJobJson {
  let raw: unknown;
  try {
    raw = JSON.parse(textContent);
  } catch (error) {
    throw new LaunchError({
      code: 'wandb.job_invalid',
      stage: 'agent',
      message: `wandb-job.json of job ${job} is not JSON: ${(error as Error).message}`,
      hint: 'the job artifact is damaged; log the job again (wandb job create, or a run with job creation on)',
      cause: error,
    });
  }
  const invalid = (issues: ReturnType<typeof zodIssues>) =>
    new LaunchValidationError({ code: 'wandb.job_invalid', stage: 'agent', subject: `wandb-job.json of job ${job}`, issues });
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw invalid([
      {
        path: '',
        expected: 'an object',
        found: Array.isArray(raw) ? 'an array' : typeof raw,
        message: `expected an object, found ${JSON.stringify(raw)?.slice(0, 40)}`,
      },
    ]);
  }
  const sourceType = (raw as Record<string, unknown>).source_type;
  const schema = sourceType === 'repo' ? repoJob : sourceType === 'artifact' ? artifactJob : sourceType === 'image' ? imageJob : undefined;
  if (!schema) {
    const found = sourceType === undefined ? 'nothing' : JSON.stringify(sourceType);
    throw invalid([{ path: 'source_type', expected: SOURCE_TYPES.join(' | '), found, message: `expected one of ${SOURCE_TYPES.join(', ')}, found ${found}` }]);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw invalid(zodIssues(parsed.error, raw));
  return parsed.data;
}

/**
 * Refuses an entry point that reaches outside the code directory. W&B's entry point is
 * `[program, script]` and its last element names the file that runs (`EntryPoint.name`): that one
 * must be a relative path that stays inside (`../x.py` and `/abs/x.py` are refused); the program
 * (the first element) may be absolute (`/usr/bin/python3`) but a relative one must not climb out.
 */
export function checkEntryPoint(entryPoint: readonly string[], job: string): void {
  const refuse = (i: number) =>
    new LaunchError({
      code: 'wandb.job_entrypoint_escapes',
      stage: 'agent',
      message: `the entry point of job ${job} reaches outside the code directory: element ${i} is ${JSON.stringify(entryPoint[i])}`,
      hint: 'a job entry point names its script relative to its code (e.g. ["python", "train.py"]); log the job again from inside its code directory',
    });
  if (entryPoint.length === 0) return;
  const program = entryPoint[0]!;
  if (!program.startsWith('/') && escapesDir(program)) throw refuse(0);
  if (entryPoint.length > 1 && escapesDir(entryPoint[entryPoint.length - 1]!)) throw refuse(entryPoint.length - 1);
}

/** Whether a relative path climbs out of its base directory. */
export function escapesDir(path: string): boolean {
  if (path.startsWith('/')) return true;
  const normal = posix.normalize(path.replace(/\\/g, '/'));
  return normal === '..' || normal.startsWith('../');
}

/** Refuses a `source.build_context` or `source.dockerfile` outside the code directory. */
export function checkInsidePath(value: string | null | undefined, field: string, job: string): void {
  if (value == null || value === '') return;
  if (escapesDir(value)) {
    throw new LaunchError({
      code: 'wandb.job_path_escapes',
      stage: 'agent',
      message: `${field} of job ${job} reaches outside the code directory: ${JSON.stringify(value)}`,
    });
  }
}
