import { LaunchError } from '@launch/core';
import { describe, expect, it } from 'vitest';
import { isConfigProblem } from './load-config.js';
import { codePvcFromEnv } from './select-runners.js';

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
