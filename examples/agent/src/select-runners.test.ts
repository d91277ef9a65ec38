import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LaunchError, silentLogger } from '@launch/core';
import { describe, expect, it } from 'vitest';
import { isConfigProblem } from './load-config.js';
import { codeInitFromEnv, codePvcFromEnv, selectRunners } from './select-runners.js';

const refusal = (env: Record<string, string>): LaunchError => {
  try {
    codePvcFromEnv(env);
  } catch (error) {
    if (LaunchError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a LaunchError');
};

describe('codePvcFromEnv', () => {
  it("takes W&B's two variables together, and neither means no code PVC", () => {
    expect(codePvcFromEnv({})).toBeUndefined();
    expect(codePvcFromEnv({ WANDB_LAUNCH_CODE_PVC_NAME: 'code', WANDB_LAUNCH_CODE_PVC_MOUNT_PATH: '/mnt/code' })).toEqual({
      name: 'code',
      mountPath: '/mnt/code',
    });
  });

  it('refuses one without the other, or a relative mount path, as a config error (exit 2) naming the variables', () => {
    const lone = refusal({ WANDB_LAUNCH_CODE_PVC_NAME: 'code' });
    expect(lone.message).toBe('WANDB_LAUNCH_CODE_PVC_NAME is set but WANDB_LAUNCH_CODE_PVC_MOUNT_PATH is not');
    expect(isConfigProblem(lone)).toBe(true);
    expect(refusal({ WANDB_LAUNCH_CODE_PVC_MOUNT_PATH: '/mnt/code' }).message).toBe(
      'WANDB_LAUNCH_CODE_PVC_MOUNT_PATH is set but WANDB_LAUNCH_CODE_PVC_NAME is not',
    );
    const relative = refusal({ WANDB_LAUNCH_CODE_PVC_NAME: 'code', WANDB_LAUNCH_CODE_PVC_MOUNT_PATH: 'mnt/code' });
    expect(relative.message).toContain('found "mnt/code"');
    expect(isConfigProblem(relative)).toBe(true);
  });
});

describe('codeInitFromEnv', () => {
  it('takes LAUNCH_CODE_INIT_IMAGE, and passes LAUNCH_ALLOW_FILE_GIT_REMOTES=1 on to the init container', () => {
    expect(codeInitFromEnv({})).toEqual({});
    expect(codeInitFromEnv({ LAUNCH_CODE_INIT_IMAGE: '' })).toEqual({});
    expect(codeInitFromEnv({ LAUNCH_CODE_INIT_IMAGE: 'ghcr.io/acme/launch-agent:1' })).toEqual({ codeInitImage: 'ghcr.io/acme/launch-agent:1' });
    expect(codeInitFromEnv({ LAUNCH_CODE_INIT_IMAGE: 'a:1', LAUNCH_ALLOW_FILE_GIT_REMOTES: '1' })).toEqual({
      codeInitImage: 'a:1',
      codeInitEnv: { LAUNCH_ALLOW_FILE_GIT_REMOTES: '1' },
    });
  });

  it('refuses a malformed image as a config error (exit 2) naming the option', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'launch-select-runners-'));
    try {
      const kubeconfig = join(dir, 'config');
      await writeFile(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n');
      const error = await selectRunners({
        config: {} as never,
        env: { KUBECONFIG: kubeconfig, LAUNCH_CODE_INIT_IMAGE: 'launch agent:1', DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}` },
        homedir: dir,
        stateDir: dir,
        logger: silentLogger,
      }).then(
        () => undefined,
        (e: unknown) => e as LaunchError,
      );
      expect(error?.code).toBe('config.kubernetes');
      expect(error?.message).toContain('codeInitImage');
      expect(isConfigProblem(error)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
