import { randomBytes } from 'node:crypto';
import { chmod, cp, lstat, mkdir, opendir, readlink, realpath, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import { LaunchError, type Logger } from '@launch/core';
import { dnsSafe } from './labels.js';

/**
 * A W&B job's code on a base image (no builder), in W&B's two modes:
 * - the code PVC (`WANDB_LAUNCH_CODE_PVC_NAME` / `WANDB_LAUNCH_CODE_PVC_MOUNT_PATH`): the agent copies the run's code
 *   onto a PersistentVolumeClaim it has mounted, under a directory for this run alone, and the run's pod mounts that
 *   directory (`subPath`) where the request asks (`/mnt/wandb`);
 * - an `emptyDir` filled by the init container `wandb-source-code-init`, which runs `launch-agent fetch-code` (an
 *   image with the agent's binary, `codeInitImage`) to fetch the job's code again inside the pod.
 */

type Obj = Record<string, unknown>;
const isRecord = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Name of the pod volume that carries the code PVC. */
export const CODE_VOLUME = 'launch-code';
/** Annotation on the run object: `<claim name>/<subPath>` of its code, so the code is removed after an adoption too. */
export const CODE_ANNOTATION = 'launch.dev/code';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** The only subPaths this runner makes (and removes): one path segment of `[a-z0-9-]`. */
const SUB_PATH = /^[a-z0-9]([-a-z0-9]{0,78}[a-z0-9])?$/;

export const codePvcSchema = z
  .object({
    /** The PersistentVolumeClaim the run's pod mounts (W&B's `WANDB_LAUNCH_CODE_PVC_NAME`), in the run's namespace. */
    name: z.string().max(253).regex(DNS_SUBDOMAIN, 'a PersistentVolumeClaim name (a DNS-1123 subdomain, e.g. "launch-code")'),
    /** Where that claim is mounted on the agent's machine (W&B's `WANDB_LAUNCH_CODE_PVC_MOUNT_PATH`). */
    mountPath: z.string().refine((p) => isAbsolute(p) && !p.includes('\0'), "an absolute directory of the agent's machine"),
  })
  .strict();

export type CodePvc = z.output<typeof codePvcSchema>;

/** A directory name for one run's code on the PVC: the run object's name plus a random suffix (never reused). */
export function codeSubPath(objectName: string): string {
  const base = dnsSafe(objectName.replace(/\./g, '-'), 60) || 'launch';
  return `${base}-${randomBytes(5).toString('hex')}`;
}

/** The `subPath` an annotation names when it is on `claimName` and is one this runner could have made; else undefined. */
export function parseCodeAnnotation(value: unknown, claimName: string): string | undefined {
  if (typeof value !== 'string') return undefined;
  const slash = value.lastIndexOf('/');
  if (slash < 0 || value.slice(0, slash) !== claimName) return undefined;
  const sub = value.slice(slash + 1);
  return SUB_PATH.test(sub) ? sub : undefined;
}

/** The init container that fetches a job's code into the `emptyDir` (W&B's name). */
export const CODE_INIT_CONTAINER = 'wandb-source-code-init';

/** An image reference: no spaces or control characters, at most 512 characters. */
export const codeInitImageSchema = z
  .string()
  .min(1)
  .max(512)
  .refine(
    (image) => ![...image].some((ch) => ch.charCodeAt(0) <= 0x20 || ch.charCodeAt(0) === 0x7f),
    'an image reference such as "ghcr.io/acme/launch-agent:0.1.0" (no spaces or control characters)',
  );

const BOTH_MODES =
  'set WANDB_LAUNCH_CODE_PVC_NAME and WANDB_LAUNCH_CODE_PVC_MOUNT_PATH (a PVC mounted on the agent at that path, codePvc option), or LAUNCH_CODE_INIT_IMAGE (an image with the launch-agent binary, codeInitImage option) so an init container fetches the code into an emptyDir';

/** The error for a run with code when neither a code PVC nor an init-container image is configured. */
export function cannotMountCode(): LaunchError {
  return new LaunchError({
    code: 'run.cannot_mount_code',
    stage: 'build',
    category: 'BuildFailed',
    message:
      'the job has code to mount into a base image (no builder), but the kubernetes runner has no code PVC configured and no image for the code init container',
    hint: `${BOTH_MODES}; or set builder.type to docker or kaniko so the code is built into an image`,
  });
}

/**
 * The error for a run whose code the init container cannot fetch: code with no source (a directory of the agent's
 * machine, `uri: file:///…`), or no W&B API key to give the init container.
 */
export function cannotFetchCode(why: 'local' | 'no_api_key', sourceString?: string): LaunchError {
  if (why === 'local') {
    return new LaunchError({
      code: 'run.cannot_fetch_code',
      stage: 'build',
      category: 'BuildFailed',
      message:
        "the job's code is a directory on the agent's machine, which the code init container cannot fetch from inside the pod (the kubernetes runner has no code PVC configured, only codeInitImage)",
      hint: 'set WANDB_LAUNCH_CODE_PVC_NAME and WANDB_LAUNCH_CODE_PVC_MOUNT_PATH so the agent copies the code onto the code PVC, set builder.type to docker or kaniko, or run a W&B job (an init container fetches those)',
    });
  }
  return new LaunchError({
    code: 'run.cannot_fetch_code',
    stage: 'build',
    category: 'BuildFailed',
    message: `the code init container needs a W&B API key to fetch the job's code (${sourceString ?? 'a W&B job'}), and the run has none (no WANDB_API_KEY, no Helm release secret)`,
    hint: 'give the agent a W&B API key (WANDB_API_KEY or api_key), or set WANDB_LAUNCH_CODE_PVC_NAME and WANDB_LAUNCH_CODE_PVC_MOUNT_PATH',
  });
}

/** An environment variable of a container: a value, or a reference (the API key's `secretKeyRef`). */
export interface CodeEnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}

/** The init container's part: its image, the job it fetches, and its environment (the key as a secret reference). */
export interface CodeInit {
  image: string;
  /** The W&B job at its resolved version, `entity/project/name:v3`. */
  job: string;
  env: CodeEnvVar[];
}

/**
 * What the pod gets: the code volume, mounted at `mountPath` in the first container. The volume is the claim with
 * the run's directory of it (`claimName`, `subPath`), or an `emptyDir` the init container fills (`init`).
 */
export type CodeMount = {
  /** Where the code appears in the run's containers (`RunRequest.code.mountPath`). */
  mountPath: string;
  /** The containers' working directory (`RunRequest.workingDir`), when given. */
  workingDir?: string;
} & ({ claimName: string; subPath: string; init?: undefined } | { init: CodeInit; claimName?: undefined; subPath?: undefined });

/** The init container that fetches the job's code into the `emptyDir` (hardened as every container is). */
export function codeInitContainer(init: CodeInit, mountPath: string, securityContext: Obj): Obj {
  return {
    name: CODE_INIT_CONTAINER,
    image: init.image,
    // `--job=` keeps a value starting with "-" a value. The API key is in the env (a secretKeyRef), never here.
    command: ['launch-agent', 'fetch-code', `--job=${init.job}`, `--dest=${mountPath}`],
    env: init.env.map((e) => ({ ...e })),
    volumeMounts: [{ name: CODE_VOLUME, mountPath }],
    securityContext: structuredClone(securityContext),
  };
}

/**
 * Adds the code volume to each pod template and mounts it into its first container (the one that gets the run's
 * image, command and args); in the emptyDir mode, the init container that fills it goes before the pod's own init
 * containers. A volume of the same name, a mount already at `mountPath`, or an init container named
 * `wandb-source-code-init` is an error naming it: the user's own volumes and containers are never replaced.
 */
export function addCodeMount(templates: Obj[], mount: CodeMount, where: (ti: number) => string, securityContext: Obj = {}): void {
  templates.forEach((template, ti) => {
    const podSpec = template.spec as Obj;
    const volumes = Array.isArray(podSpec.volumes) ? podSpec.volumes : [];
    const clash = volumes.findIndex((v) => isRecord(v) && v.name === CODE_VOLUME);
    if (clash >= 0) {
      throw clashError(`${where(ti)}.volumes[${clash}]`, `a volume named "${CODE_VOLUME}"`, `rename that volume; "${CODE_VOLUME}" carries the job's code`);
    }
    const first = (podSpec.containers as Obj[])[0];
    if (!first) return;
    const mounts = Array.isArray(first.volumeMounts) ? first.volumeMounts : [];
    const taken = mounts.findIndex((m) => isRecord(m) && typeof m.mountPath === 'string' && samePath(m.mountPath, mount.mountPath));
    if (taken >= 0) {
      throw clashError(
        `${where(ti)}.containers[0].volumeMounts[${taken}]`,
        `a volume mounted at ${mount.mountPath}`,
        `mount it elsewhere; the job's code is mounted at ${mount.mountPath}`,
      );
    }
    if (mount.init) {
      const inits = Array.isArray(podSpec.initContainers) ? podSpec.initContainers : [];
      const named = inits.findIndex((c) => isRecord(c) && c.name === CODE_INIT_CONTAINER);
      if (named >= 0) {
        throw clashError(
          `${where(ti)}.initContainers[${named}]`,
          `an init container named "${CODE_INIT_CONTAINER}"`,
          `rename that init container; "${CODE_INIT_CONTAINER}" fetches the job's code`,
        );
      }
      podSpec.volumes = [...volumes, { name: CODE_VOLUME, emptyDir: {} }];
      podSpec.initContainers = [codeInitContainer(mount.init, mount.mountPath, securityContext), ...inits];
      first.volumeMounts = [...mounts, { name: CODE_VOLUME, mountPath: mount.mountPath }];
    } else {
      podSpec.volumes = [...volumes, { name: CODE_VOLUME, persistentVolumeClaim: { claimName: mount.claimName } }];
      first.volumeMounts = [...mounts, { name: CODE_VOLUME, mountPath: mount.mountPath, subPath: mount.subPath }];
    }
    if (mount.workingDir !== undefined) first.workingDir = mount.workingDir;
  });
}

const samePath = (a: string, b: string) => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');

function clashError(path: string, what: string, fix: string): LaunchError {
  return new LaunchError({
    code: 'run.code_volume_clash',
    stage: 'run',
    category: 'InvalidSpec',
    message: `resource_args.kubernetes ${path} is ${what}, which the job's code mount needs`,
    hint: fix,
  });
}

/**
 * Copies `from` (the run's private copy of the code) to `<root>/<subPath>`, streamed file by file (bounded memory),
 * keeping modes and relative symlinks. Refuses symlinks that point outside the code. The directory is new (never an
 * existing one) and readable by any user (0755). A failed copy leaves nothing behind.
 */
export async function copyCode(from: string, root: string, subPath: string): Promise<string> {
  if (!SUB_PATH.test(subPath)) throw new Error(`not a code subPath: ${subPath}`);
  const rootStat = await stat(root).catch((error: NodeJS.ErrnoException) => {
    throw copyError(error, root, root);
  });
  if (!rootStat.isDirectory()) throw copyError(Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }), root, root);
  await checkSymlinks(from);
  const dest = join(root, subPath);
  try {
    await mkdir(dest, { mode: 0o755 });
  } catch (error) {
    throw copyError(error as NodeJS.ErrnoException, root, dest);
  }
  try {
    await chmod(dest, 0o755);
    await cp(from, dest, { recursive: true, verbatimSymlinks: true, errorOnExist: true, force: false });
  } catch (error) {
    await rm(dest, { recursive: true, force: true }).catch(() => undefined);
    throw copyError(error as NodeJS.ErrnoException, root, dest);
  }
  return dest;
}

/** Removes a run's code directory from the PVC (nothing when it is gone). Only names this runner makes are accepted. */
export async function removeCode(root: string, subPath: string): Promise<void> {
  if (!SUB_PATH.test(subPath)) throw new Error(`not a code subPath: ${subPath}`);
  await rm(join(root, subPath), { recursive: true, force: true });
}

/**
 * Removes a run's code once none of its pods can still read it (`livePods` resolves to 0). The first check is
 * awaited; while pods are still going (a preempted pod terminating), it checks again in the background with a growing
 * delay, and leaves the code in place with a warning after `deadlineMs`.
 */
export async function removeCodeWhenIdle(options: {
  root: string;
  subPath: string;
  livePods: () => Promise<number>;
  logger: Logger;
  deadlineMs?: number;
}): Promise<void> {
  const { root, subPath, logger } = options;
  const deadline = Date.now() + (options.deadlineMs ?? 15 * 60_000);
  const remove = () =>
    removeCode(root, subPath).then(
      () => logger.debug({ dir: join(root, subPath) }, "removed the run's code from the code PVC"),
      (error: unknown) => logger.warn({ dir: join(root, subPath), err: (error as Error).message }, "could not remove the run's code from the code PVC"),
    );
  const live = () =>
    options.livePods().catch((error: unknown) => {
      logger.warn({ err: (error as Error).message }, "could not list the run's pods before removing its code");
      return -1;
    });
  if ((await live()) === 0) return remove();
  let delay = 500;
  const again = async (): Promise<void> => {
    if (Date.now() > deadline) {
      logger.warn({ dir: join(root, subPath) }, "the run's pods did not end in time: its code is left on the code PVC");
      return;
    }
    if ((await live()) === 0) return remove();
    delay = Math.min(delay * 2, 10_000);
    setTimeout(() => void again(), delay).unref();
  };
  setTimeout(() => void again(), delay).unref();
}

/** Refuses a symlink in the code whose target is absolute or leaves the code directory. */
async function checkSymlinks(from: string): Promise<void> {
  const top = resolve(from);
  const realTop = await realpath(top).catch(() => top);
  const pending = [top];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let handle;
    try {
      handle = await opendir(dir);
    } catch (error) {
      throw new LaunchError({
        code: 'run.code_read_failed',
        stage: 'run',
        message: `reading the job's code at ${dir} failed: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        hint: "the agent's copy of the code is unreadable or was removed while the run started; run the job again",
        cause: error,
      });
    }
    for await (const entry of handle) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) pending.push(path);
      else if (entry.isSymbolicLink()) {
        const target = await readlink(path);
        // Lexically, and (when the target exists) as the kernel resolves it: a link through other links may climb further.
        const real = await realpath(path).catch(() => undefined);
        if (isAbsolute(target) || outside(top, resolve(dirname(path), target)) || (real !== undefined && outside(realTop, real))) {
          throw new LaunchError({
            code: 'run.code_symlink_escapes',
            stage: 'run',
            category: 'InvalidSpec',
            message: `the job's code has a symlink ${relative(top, path)} pointing outside the code (${JSON.stringify(target)}); it is not copied to the code PVC`,
            hint: "make the link relative and inside the code directory, or remove it from the job's code",
          });
        }
      }
    }
  }
  // The top itself must be a directory, not a link to one.
  if (!(await lstat(top)).isDirectory()) throw new Error(`the code directory ${from} is not a directory`);
}

function outside(top: string, path: string): boolean {
  const within = relative(top, path);
  return within === '..' || within.startsWith(`..${sep}`) || isAbsolute(within);
}

function copyError(error: NodeJS.ErrnoException, root: string, path: string): LaunchError {
  const code = error.code ?? '';
  const hints: Record<string, string> = {
    ENOENT:
      path === root
        ? `mount the code PVC on the agent at ${root} (WANDB_LAUNCH_CODE_PVC_MOUNT_PATH), or correct that path`
        : `the job's code changed while it was copied; run the job again`,
    ENOTDIR: `WANDB_LAUNCH_CODE_PVC_MOUNT_PATH must name the directory where the code PVC is mounted, not ${root}`,
    ENOSPC: `the code PVC mounted at ${root} is full: remove old runs' code from it or give it more space`,
    EDQUOT: `the code PVC mounted at ${root} is over its quota: remove old runs' code from it or raise the quota`,
    EACCES: `the agent's user cannot write to ${root}: make the code PVC writable by it (fsGroup or the volume's owner)`,
    EPERM: `the agent's user cannot write to ${root}: make the code PVC writable by it (fsGroup or the volume's owner)`,
    EROFS: `the code PVC is mounted read-only at ${root}: mount it read-write on the agent`,
  };
  if (LaunchError.isInstance(error)) return error as unknown as LaunchError;
  return new LaunchError({
    code: 'run.code_copy_failed',
    stage: 'run',
    message: `copying the job's code to the code PVC failed at ${path}: ${code || error.message}`,
    hint: hints[code] ?? `check that ${root} is the code PVC's mount on the agent and is writable`,
    cause: error,
  });
}
