import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LaunchError, type CallContext, type ContextStore } from '@launch/core';
import { KANIKO_DEFAULTS } from './job.js';

export interface PvcContextStoreOptions {
  /** Where the agent has the PVC mounted (W&B `WANDB_LAUNCH_KANIKO_PVC_MOUNT_PATH`, default `/kaniko`). */
  mountPath: string;
  /** Where the build pod has it mounted; the URIs are `tar://<podMountPath>/<key>`. Default `/context`. */
  podMountPath?: string;
}

const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * A {@link ContextStore} on a PersistentVolumeClaim shared by the agent and the kaniko build pod (W&B's
 * `WANDB_LAUNCH_KANIKO_PVC_NAME`): `upload` copies the context to `<mountPath>/<key>` and answers
 * `tar:///context/<key>`, the path the build pod sees.
 */
export function createPvcContextStore(options: PvcContextStoreOptions): ContextStore {
  const podMount = (options.podMountPath ?? KANIKO_DEFAULTS.pvcContextMount).replace(/\/+$/, '');
  const prefix = `tar://${podMount}/`;
  const fail = (code: string, message: string, hint: string, cause?: unknown) =>
    new LaunchError({ code: `context.${code}`, stage: 'build', category: 'ContextUpload', message, hint, cause });
  const checkKey = (key: string) => {
    if (!KEY.test(key))
      throw fail(
        'invalid_key',
        `a PVC context key must be a file name ([A-Za-z0-9._-], not starting with "."), found ${JSON.stringify(key)}`,
        'this is a bug in the caller',
      );
  };
  return {
    specificationVersion: 'v1',
    name: 'pvc',
    async verify() {
      const info = await stat(options.mountPath).catch((error: unknown) => {
        throw fail(
          'pvc_missing',
          `the kaniko PVC mount path ${options.mountPath} cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
          'mount the PVC named by WANDB_LAUNCH_KANIKO_PVC_NAME into the agent at WANDB_LAUNCH_KANIKO_PVC_MOUNT_PATH (default /kaniko)',
          error,
        );
      });
      if (!info.isDirectory()) throw fail('pvc_missing', `the kaniko PVC mount path ${options.mountPath} is not a directory`, 'mount the PVC there');
    },
    async upload(localPath: string, key: string, _ctx: CallContext) {
      checkKey(key);
      await mkdir(options.mountPath, { recursive: true }).catch(() => undefined);
      try {
        await copyFile(localPath, join(options.mountPath, key));
      } catch (error) {
        throw fail(
          'upload_failed',
          `copying the build context to the PVC at ${join(options.mountPath, key)} failed: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
          'check the PVC is mounted read-write and has space',
          error,
        );
      }
      return { uri: `${prefix}${key}` };
    },
    async delete(uri: string) {
      if (!uri.startsWith(prefix))
        throw fail('invalid_uri', `not a context on this PVC: ${JSON.stringify(uri)} (expected ${prefix}<key>)`, 'this is a bug in the caller');
      const key = uri.slice(prefix.length);
      checkKey(key);
      await rm(join(options.mountPath, key), { force: true });
    },
  };
}
