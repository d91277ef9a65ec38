import type { Stats } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, posix, resolve, sep } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { BOOTSTRAP_SCRIPT, generateDockerfile, pythonMajorMinor, validateAcceleratorImage, WANDB_DOCKERFILE, type RequirementsSource } from './dockerfile.js';
import { contextError } from './errors.js';
import { emptyDockerIgnore, parseDockerIgnore, type DockerIgnore } from './ignore.js';
import type { ContextLayout } from './walk.js';

/** Which rule of W&B's precedence chose the Dockerfile. */
export type DockerfileSource = 'overrides.dockerfile' | 'job dockerfile' | 'Dockerfile.wandb' | 'generated';

/** What the build context is made from: the job's code and the spec fields W&B's context manager reads. */
export interface BuildContextInput {
  /** The job's code (W&B's project directory). */
  dir: string;
  /** The job's `build_context`: a subdirectory of `dir` that becomes the context root. */
  buildContext?: string;
  /** `overrides.dockerfile`: a Dockerfile path relative to the context root. */
  overrideDockerfile?: string;
  /** The job's own `dockerfile`, relative to the context root. */
  jobDockerfile?: string;
  /** The job's entry point (its last element names the entry file, as in W&B). */
  jobEntryPoint?: readonly string[];
  /** `overrides.entry_point` (its entry file is the first element ending in .py/.sh, else the second). */
  overrideEntryPoint?: readonly string[];
  /** `python_version` of the spec, else the job's runtime; written to `src/runtime.txt` when given. */
  pythonVersion?: string;
  /** Python used by a generated Dockerfile when the job names none (W&B uses the agent's own). */
  defaultPythonVersion: string;
  /** `resource_args.<resource>.builder.accelerator.base_image` (or `cuda.base_image`). */
  acceleratorBaseImage?: string;
  /** The user a generated Dockerfile creates: W&B's `docker.user_id` and a fixed name. */
  user: { name: string; uid: number };
  /** The resource the job runs on (`sagemaker` images run as root). */
  resource?: string;
  /** Use a BuildKit cache mount in generated `RUN` lines (W&B does with buildx). */
  cacheMount?: boolean;
  /** Most entries the context may hold. */
  maxEntries: number;
}

/** A resolved build context: what to pack, the Dockerfile in it, and what was decided on the way. */
export interface BuildContextPlan extends ContextLayout {
  dockerfileSource: DockerfileSource;
  /** Path of the Dockerfile inside the archive (always W&B's `Dockerfile.wandb`). */
  dockerfilePath: string;
  /** Its content. */
  dockerfile: string;
  /** The command to run: the entry point, rewritten when the context moved to its directory. */
  entryPoint?: string[];
  /** For a generated Dockerfile: where the dependencies come from. */
  requirements?: RequirementsSource['kind'];
  /** Things a user should hear about (missing requirements, wandb not listed, …). */
  warnings: string[];
}

const MAX_DOCKERFILE_BYTES = 1024 * 1024;
const MAX_TEXT_BYTES = 8 * 1024 * 1024;

const isInside = (root: string, path: string) => path === root || path.startsWith(root + sep);
const errno = (error: unknown) => (error as NodeJS.ErrnoException).code;

/**
 * Resolves `rel` (from a spec or job field) under `root`, refusing any path that leaves it, by `..`,
 * by being absolute, or through a symbolic link. Returns undefined when nothing is there.
 */
async function locate(root: string, rel: string, field: string): Promise<{ path: string; stats: Stats } | undefined> {
  const escapes = () =>
    contextError({
      code: 'context_path_escapes',
      message: `${field} ${JSON.stringify(rel)} points outside the build context ${root}`,
      hint: `give ${field} as a path inside the job's code, without "..", absolute paths or links leading out`,
    });
  if (rel.includes('\0')) throw escapes();
  const lexical = resolve(root, rel);
  if (isAbsolute(rel) || !isInside(root, lexical)) throw escapes();
  let real: string;
  try {
    real = await realpath(lexical);
  } catch (error) {
    if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return undefined;
    throw contextError({
      code: 'context_unreadable',
      message: `cannot read ${field} ${JSON.stringify(rel)}: ${errno(error) ?? (error as Error).message}`,
      cause: error,
    });
  }
  if (!isInside(root, real)) throw escapes();
  return { path: real, stats: await stat(real) };
}

async function readText(root: string, rel: string, field: string, maxBytes: number): Promise<string | undefined> {
  const found = await locate(root, rel, field);
  if (!found) return undefined;
  if (!found.stats.isFile()) {
    throw contextError({ code: 'context_not_a_file', message: `${field} ${JSON.stringify(rel)} in ${root} is not a regular file` });
  }
  if (found.stats.size > maxBytes) {
    throw contextError({
      code: 'context_file_too_large',
      message: `${field} ${JSON.stringify(rel)} is ${found.stats.size} bytes; at most ${maxBytes} are read`,
    });
  }
  return readFile(found.path, 'utf8');
}

async function realDirectory(path: string, field: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (error) {
    throw contextError({
      code: 'context_missing',
      message: `${field} ${path} does not exist (${errno(error) ?? (error as Error).message})`,
      hint: 'the job code must be downloaded before the build',
      cause: error,
    });
  }
  if (!(await stat(real)).isDirectory()) throw contextError({ code: 'context_missing', message: `${field} ${path} is not a directory` });
  return real;
}

async function loadIgnore(root: string): Promise<DockerIgnore> {
  const text = await readText(root, '.dockerignore', '.dockerignore', MAX_TEXT_BYTES);
  if (text === undefined) return emptyDockerIgnore;
  try {
    return parseDockerIgnore(text);
  } catch (error) {
    throw contextError({
      code: 'invalid_dockerignore',
      message: `${join(root, '.dockerignore')}: ${(error as Error).message}`,
      hint: 'fix the pattern; .dockerignore follows the docker CLI syntax',
    });
  }
}

/** W&B's `get_entrypoint_file`: the first element when it ends in .py or .sh, else the second. */
export function entryPointFile(entryPoint: readonly string[] | undefined): string | undefined {
  if (!entryPoint || entryPoint.length === 0) return undefined;
  const first = entryPoint[0]!;
  if (first.endsWith('.py') || first.endsWith('.sh')) return first;
  return entryPoint[1];
}

async function requirementsOf(dir: string, ignore: DockerIgnore, warnings: string[]): Promise<{ source: RequirementsSource; files: Array<[string, Buffer]> }> {
  const present = async (name: string) => {
    const text = await readText(dir, name, name, MAX_TEXT_BYTES);
    if (text !== undefined && ignore.ignores(name)) {
      warnings.push(`${name} is excluded by .dockerignore, so it is not used for the dependencies`);
      return undefined;
    }
    return text;
  };
  const requirements = await present('requirements.txt');
  if (requirements !== undefined) {
    if (!requirements.split('\n').some((line) => line.includes('wandb'))) warnings.push('wandb is not present in requirements.txt');
    return { source: { kind: 'requirements.txt' }, files: [] };
  }
  const pyproject = await present('pyproject.toml');
  if (pyproject !== undefined) {
    let parsed: Record<string, unknown>;
    try {
      parsed = parseToml(pyproject) as Record<string, unknown>;
    } catch (error) {
      throw contextError({
        code: 'invalid_pyproject',
        message: `pyproject.toml of the job is not valid TOML: ${(error as Error).message.split('\n')[0]}`,
        hint: 'fix pyproject.toml, or give the job a requirements.txt',
      });
    }
    const project = parsed.project as Record<string, unknown> | undefined;
    const deps = project && typeof project === 'object' ? project.dependencies : undefined;
    if (deps !== undefined && (!Array.isArray(deps) || deps.some((d) => typeof d !== 'string'))) {
      throw contextError({
        code: 'invalid_pyproject',
        message: `pyproject.toml: project.dependencies must be a list of strings, found ${Array.isArray(deps) ? 'a list with non-strings' : typeof deps}`,
      });
    }
    const list = (deps ?? []) as string[];
    if (list.length > 0) {
      if (!list.some((d) => d.includes('wandb'))) warnings.push('wandb is not present as a dependency in pyproject.toml');
      return { source: { kind: 'pyproject.toml', dependencies: list }, files: [['src/requirements.txt', Buffer.from(list.join('\n'))]] };
    }
  }
  const frozen = await present('requirements.frozen.txt');
  if (frozen !== undefined) {
    if (!frozen.split('\n').some((line) => line.includes('wandb'))) warnings.push('wandb is not present in requirements.frozen.txt');
    return { source: { kind: 'requirements.frozen.txt' }, files: [] };
  }
  warnings.push('no requirements.txt, pyproject.toml dependencies or requirements.frozen.txt found: no packages will be installed');
  return { source: { kind: 'none' }, files: [] };
}

function plan(
  layout: Omit<ContextLayout, 'files'> & { files?: Array<[string, Buffer]> },
  dockerfile: string,
  rest: Omit<BuildContextPlan, keyof ContextLayout | 'dockerfile' | 'dockerfilePath'>,
): BuildContextPlan {
  const files = new Map<string, Buffer>(layout.files ?? []);
  files.set(WANDB_DOCKERFILE, Buffer.from(dockerfile));
  return { ...layout, files, dockerfile, dockerfilePath: WANDB_DOCKERFILE, ...rest };
}

/**
 * Decides what goes into a job's build context, in W&B's order (`builder/context_manager.py`):
 *
 * 1. the job's `build_context` subdirectory becomes the root;
 * 2. `overrides.dockerfile` (relative to that root) is used, copied to `Dockerfile.wandb`;
 * 3. else the job's own `dockerfile`, the same way;
 * 4. else a `Dockerfile.wandb` beside the entry point: the entry point's directory becomes the root
 *    and the entry point is rewritten to the file's base name;
 * 5. else a generated Python Dockerfile: the code goes under `src/`, with `_wandb_bootstrap.py`,
 *    `src/runtime.txt` when a Python version is known, and `src/requirements.txt` made from
 *    `pyproject.toml`'s `[project].dependencies`.
 *
 * The `.dockerignore` at the root of the packed directory applies (for a generated Dockerfile, the
 * one at the top of the code, to the code under `src/`). Nothing is copied: the plan names files,
 * which {@link packContext} streams. Paths from the spec or job that leave the code directory (by
 * `..`, absolute paths or links) are refused with a LaunchError at stage `build` naming them.
 */
export async function resolveBuildContext(input: BuildContextInput): Promise<BuildContextPlan> {
  const warnings: string[] = [];
  const codeDir = await realDirectory(input.dir, 'the job code directory');
  let root = codeDir;
  if (input.buildContext) {
    const found = await locate(codeDir, input.buildContext, 'the job build_context');
    if (!found || !found.stats.isDirectory()) {
      throw contextError({
        code: 'context_missing',
        message: `the job build_context ${JSON.stringify(input.buildContext)} is not a directory in ${codeDir}`,
        hint: 'the job names a build context directory its code does not have',
      });
    }
    root = found.path;
  }
  const maxEntries = input.maxEntries;
  const base = { mount: '', maxEntries };

  for (const [field, rel, source] of [
    ['overrides.dockerfile', input.overrideDockerfile, 'overrides.dockerfile'],
    ['the job dockerfile', input.jobDockerfile, 'job dockerfile'],
  ] as const) {
    if (!rel) continue;
    const dockerfile = await readText(root, rel, field, MAX_DOCKERFILE_BYTES);
    if (dockerfile === undefined) {
      throw contextError({
        code: 'dockerfile_missing',
        message: `${field} ${JSON.stringify(rel)} does not exist in ${root}`,
        hint: `give ${field} as a path relative to the job's ${input.buildContext ? 'build_context' : 'code'} directory`,
      });
    }
    const entryPoint = input.overrideEntryPoint ?? input.jobEntryPoint;
    return plan({ ...base, root, ignore: await loadIgnore(root) }, dockerfile, {
      dockerfileSource: source,
      entryPoint: entryPoint ? [...entryPoint] : undefined,
      warnings,
    });
  }

  // W&B looks beside the job's entry point first (its name is the command's last element), else the override's.
  const entryName = input.jobEntryPoint?.length ? input.jobEntryPoint.at(-1) : entryPointFile(input.overrideEntryPoint);
  if (entryName && !isAbsolute(entryName)) {
    const entryDir = posix.dirname(entryName.split(sep).join('/'));
    const candidate = entryDir === '.' ? WANDB_DOCKERFILE : `${entryDir}/${WANDB_DOCKERFILE}`;
    const lexical = resolve(root, candidate);
    if (isInside(root, lexical)) {
      const dockerfile = await readText(root, candidate, `${WANDB_DOCKERFILE} beside the entry point`, MAX_DOCKERFILE_BYTES);
      if (dockerfile !== undefined) {
        const dir = dirname((await locate(root, candidate, WANDB_DOCKERFILE))!.path);
        const rewrite = (ep: readonly string[] | undefined) =>
          ep && entryDir !== '.' ? ep.map((part) => (part === entryName ? basename(entryName) : part)) : ep ? [...ep] : undefined;
        return plan({ ...base, root: dir, ignore: await loadIgnore(dir) }, dockerfile, {
          dockerfileSource: 'Dockerfile.wandb',
          entryPoint: rewrite(input.overrideEntryPoint ?? input.jobEntryPoint),
          warnings,
        });
      }
    }
  }

  // Generated: the whole code directory under src/ (W&B copies the project dir, not the build_context).
  const command = input.overrideEntryPoint?.length ? input.overrideEntryPoint : input.jobEntryPoint;
  if (!command?.length) {
    throw contextError({
      code: 'no_entry_point',
      message: 'the job has no Dockerfile and no entry point, so no Dockerfile can be generated for it',
      hint: 'give the job an entry point (`overrides.entry_point`) or a Dockerfile (`overrides.dockerfile`)',
    });
  }
  const ignore = await loadIgnore(codeDir);
  const pythonVersion = pythonMajorMinor(
    input.pythonVersion ?? input.defaultPythonVersion,
    input.pythonVersion ? 'python_version' : 'the default Python version',
  );
  const accelerator = input.acceleratorBaseImage
    ? validateAcceleratorImage(input.acceleratorBaseImage, 'resource_args.<resource>.builder.accelerator.base_image')
    : undefined;
  const requirements = await requirementsOf(codeDir, ignore, warnings);
  const files: Array<[string, Buffer]> = [['_wandb_bootstrap.py', Buffer.from(BOOTSTRAP_SCRIPT)], ...requirements.files];
  if (input.pythonVersion) files.push(['src/runtime.txt', Buffer.from(`python-${input.pythonVersion}`)]);
  const dockerfile = generateDockerfile({
    pythonVersion,
    requirements: requirements.source,
    acceleratorBaseImage: accelerator,
    user: input.user,
    resource: input.resource,
    entryPoint: command,
    cacheMount: input.cacheMount,
  });
  return plan({ root: codeDir, mount: 'src', ignore, maxEntries, files }, dockerfile, {
    dockerfileSource: 'generated',
    entryPoint: [...command],
    requirements: requirements.source.kind,
    warnings,
  });
}
