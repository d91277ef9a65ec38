import { randomBytes } from 'node:crypto';
import { chmod, cp, lstat, mkdir, opendir, readlink, realpath, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import { LaunchError, type Logger } from '@launch/core';
import { dnsSafe } from './labels.js';

/**
 * A W&B job's code on a base image (no builder): W&B's `WANDB_LAUNCH_CODE_PVC_NAME` /
 * `WANDB_LAUNCH_CODE_PVC_MOUNT_PATH` mode. The agent copies the run's code onto a PersistentVolumeClaim it has
 * mounted, under a directory for this run alone, and the run's pod mounts that directory (`subPath`) where the
 * request asks (`/mnt/wandb`). W&B's other mode (an emptyDir filled by an init container) is not built.
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

/** The error for a run with code when no code PVC is configured. */
export function cannotMountCode(): LaunchError {
  return new LaunchError({
    code: 'run.cannot_mount_code',
    stage: 'build',
    category: 'BuildFailed',
    message: 'the job has code to mount into a base image (no builder), but the kubernetes runner has no code PVC configured',
    hint: 'set WANDB_LAUNCH_CODE_PVC_NAME and WANDB_LAUNCH_CODE_PVC_MOUNT_PATH (a PVC mounted on the agent at that path, codePvc option), or set builder.type to docker or kaniko so the code is built into an image',
  });
}

/** What the pod gets: the claim as a volume and the run's directory of it at `mountPath`. */
export interface CodeMount {
  claimName: string;
  subPath: string;
  /** Where the code appears in the run's containers (`RunRequest.code.mountPath`). */
  mountPath: string;
  /** The containers' working directory (`RunRequest.workingDir`), when given. */
  workingDir?: string;
}

/**
 * Adds the code volume to each pod template and mounts it into its first container (the one that gets the run's
 * image, command and args). A volume of the same name, or a mount already at `mountPath`, is an error naming it:
 * the user's own volumes are never replaced.
 */
export function addCodeMount(templates: Obj[], mount: CodeMount, where: (ti: number) => string): void {
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
    podSpec.volumes = [...volumes, { name: CODE_VOLUME, persistentVolumeClaim: { claimName: mount.claimName } }];
    first.volumeMounts = [...mounts, { name: CODE_VOLUME, mountPath: mount.mountPath, subPath: mount.subPath }];
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
