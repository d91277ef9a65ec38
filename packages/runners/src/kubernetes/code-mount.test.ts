import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LaunchError, LaunchValidationError } from '@launch/core';
import { afterEach, describe, expect, it } from 'vitest';
import { addCodeMount, codeSubPath, copyCode, parseCodeAnnotation, removeCode, removeCodeWhenIdle } from './code-mount.js';
import { buildJobManifest } from './manifest.js';
import { parseKubernetesRunnerOptions } from './options.js';
import { kubeRequest } from './test-fixtures.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function tmp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** A job's code as core hands it over: files of several modes, a subdirectory, a relative symlink. */
async function codeDir(): Promise<string> {
  const code = await tmp('launch-code-src-');
  await writeFile(join(code, 'train.py'), 'print("hello")\n');
  await chmod(join(code, 'train.py'), 0o640);
  await writeFile(join(code, 'run.sh'), '#!/bin/sh\necho run\n');
  await chmod(join(code, 'run.sh'), 0o755);
  await mkdir(join(code, 'src', 'pkg'), { recursive: true });
  await writeFile(join(code, 'src', 'pkg', 'data.bin'), Buffer.from([0, 1, 2, 255]));
  await chmod(join(code, 'src'), 0o750);
  await symlink('../train.py', join(code, 'src', 'link.py'));
  return code;
}

const mode = async (p: string) => (await stat(p)).mode & 0o7777;

describe('copyCode', () => {
  it('copies every file with its content and mode into a new 0755 directory, keeping relative symlinks', async () => {
    const code = await codeDir();
    const root = await tmp('launch-pvc-');
    const sub = codeSubPath('launch-e-p-0123456789');
    expect(sub).toMatch(/^launch-e-p-0123456789-[0-9a-f]{10}$/);
    const dest = await copyCode(code, root, sub);
    expect(dest).toBe(join(root, sub));
    expect(await mode(dest)).toBe(0o755);
    expect(await readFile(join(dest, 'train.py'), 'utf8')).toBe('print("hello")\n');
    expect(await mode(join(dest, 'train.py'))).toBe(0o640);
    expect(await mode(join(dest, 'run.sh'))).toBe(0o755);
    expect(await mode(join(dest, 'src'))).toBe(0o750);
    expect([...(await readFile(join(dest, 'src', 'pkg', 'data.bin')))]).toEqual([0, 1, 2, 255]);
    expect((await lstat(join(dest, 'src', 'link.py'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(dest, 'src', 'link.py'))).toBe('../train.py');
    // The source is untouched (core removes its own copy).
    expect(await readFile(join(code, 'train.py'), 'utf8')).toBe('print("hello")\n');
  });

  it('refuses symlinks that leave the code, and leaves nothing on the PVC', async () => {
    // The last climbs through another link (`up` -> `.`): lexically inside, but the kernel resolves it outside.
    for (const target of ['/etc/passwd', '../../../outside', '../../src/../../x', 'up/up/../../..']) {
      const code = await codeDir();
      await symlink('.', join(code, 'src', 'pkg', 'up'));
      await symlink(target, join(code, 'src', 'pkg', 'bad'));
      const root = await tmp('launch-pvc-');
      const error = await copyCode(code, root, codeSubPath('x')).catch((e: unknown) => e);
      expect(LaunchError.isInstance(error)).toBe(true);
      expect((error as LaunchError).code).toBe('run.code_symlink_escapes');
      expect((error as LaunchError).message).toContain(join('src', 'pkg', 'bad'));
      expect(await readdir(root)).toEqual([]);
    }
  });

  it('names a missing mount path and says how to fix it', async () => {
    const code = await codeDir();
    const root = join(await tmp('launch-pvc-'), 'not-mounted');
    const error = (await copyCode(code, root, codeSubPath('x')).catch((e: unknown) => e)) as LaunchError;
    expect(LaunchError.isInstance(error)).toBe(true);
    expect(error.code).toBe('run.code_copy_failed');
    expect(error.stage).toBe('run');
    expect(error.message).toContain(root);
    expect(error.message).toContain('ENOENT');
    expect(error.hint).toContain('WANDB_LAUNCH_CODE_PVC_MOUNT_PATH');
  });

  it('names a mount path that is a file', async () => {
    const code = await codeDir();
    const file = join(await tmp('launch-pvc-'), 'file');
    await writeFile(file, 'x');
    const error = (await copyCode(code, file, codeSubPath('x')).catch((e: unknown) => e)) as LaunchError;
    expect(error.code).toBe('run.code_copy_failed');
    expect(error.message).toContain(file);
    expect(error.hint).toContain('WANDB_LAUNCH_CODE_PVC_MOUNT_PATH');
  });

  it('names a full PVC (ENOSPC) and removes the partial copy', async (t) => {
    // A 64 KiB tmpfs stands for a full PVC; mounting one needs root and CAP_SYS_ADMIN.
    const { execFileSync } = await import('node:child_process');
    const root = await tmp('launch-pvc-full-');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', root], { stdio: 'ignore' });
    } catch {
      t.skip('cannot mount a tmpfs here (needs root): ENOSPC not exercised');
      return;
    }
    try {
      const code = await codeDir();
      await writeFile(join(code, 'weights.bin'), Buffer.alloc(512 * 1024, 7));
      const error = (await copyCode(code, root, codeSubPath('x')).catch((e: unknown) => e)) as LaunchError;
      expect(error.code).toBe('run.code_copy_failed');
      expect(error.message).toContain('ENOSPC');
      expect(error.message).toContain(root);
      expect(error.hint).toContain('is full');
      expect(await readdir(root)).toEqual([]);
    } finally {
      execFileSync('umount', [root], { stdio: 'ignore' });
    }
  });

  it('fails on an unreadable file and removes the partial copy', async () => {
    const code = await codeDir();
    // A FIFO cannot be copied (fs.cp refuses it): the copy fails midway.
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [join(code, 'src', 'pipe')]);
    const root = await tmp('launch-pvc-');
    const error = (await copyCode(code, root, codeSubPath('x')).catch((e: unknown) => e)) as LaunchError;
    expect(error.code).toBe('run.code_copy_failed');
    expect(error.message).toContain(root);
    expect(await readdir(root)).toEqual([]);
  });
});

describe('removeCode / removeCodeWhenIdle', () => {
  it('removes the directory at once when no pod is live', async () => {
    const root = await tmp('launch-pvc-');
    const sub = codeSubPath('a');
    await copyCode(await codeDir(), root, sub);
    let calls = 0;
    await removeCodeWhenIdle({ root, subPath: sub, logger: quiet, livePods: async () => (calls++, 0) });
    expect(calls).toBe(1);
    expect(await readdir(root)).toEqual([]);
  });

  it('keeps the code while a pod is still going, then removes it', async () => {
    const root = await tmp('launch-pvc-');
    const sub = codeSubPath('a');
    await copyCode(await codeDir(), root, sub);
    let live = 1;
    let checks = 0;
    await removeCodeWhenIdle({ root, subPath: sub, logger: quiet, livePods: async () => (checks++, live) });
    expect(await readdir(root)).toEqual([sub]);
    live = 0;
    const deadline = Date.now() + 20_000;
    while ((await readdir(root)).length > 0) {
      if (Date.now() > deadline) throw new Error('the code was not removed');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(checks).toBeGreaterThanOrEqual(2);
  });

  it('only removes names it makes', async () => {
    const root = await tmp('launch-pvc-');
    await expect(removeCode(root, '..')).rejects.toThrow(/not a code subPath/);
    await expect(removeCode(root, 'a/b')).rejects.toThrow(/not a code subPath/);
  });
});

describe('parseCodeAnnotation', () => {
  it('accepts only a subPath on the configured claim that this runner could have made', () => {
    expect(parseCodeAnnotation('launch-code/launch-x-0123456789', 'launch-code')).toBe('launch-x-0123456789');
    expect(parseCodeAnnotation('other/launch-x-0123456789', 'launch-code')).toBeUndefined();
    expect(parseCodeAnnotation('launch-code/..', 'launch-code')).toBeUndefined();
    expect(parseCodeAnnotation('launch-code/../../etc', 'launch-code')).toBeUndefined();
    expect(parseCodeAnnotation('launch-code/', 'launch-code')).toBeUndefined();
    expect(parseCodeAnnotation(42, 'launch-code')).toBeUndefined();
  });
});

describe('addCodeMount', () => {
  const template = () => ({
    spec: {
      containers: [{ name: 'main', volumeMounts: [{ name: 'dshm', mountPath: '/dev/shm' }] }, { name: 'side' }],
      volumes: [{ name: 'dshm', emptyDir: {} }],
    },
  });

  it('adds the claim as a volume and mounts its subPath into the first container only', () => {
    const t = template();
    addCodeMount([t], { claimName: 'code', subPath: 'run-1', mountPath: '/mnt/wandb', workingDir: '/mnt/wandb/src' }, () => 'spec.template.spec');
    expect(t.spec.volumes).toEqual([
      { name: 'dshm', emptyDir: {} },
      { name: 'launch-code', persistentVolumeClaim: { claimName: 'code' } },
    ]);
    expect(t.spec.containers[0]).toEqual({
      name: 'main',
      volumeMounts: [
        { name: 'dshm', mountPath: '/dev/shm' },
        { name: 'launch-code', mountPath: '/mnt/wandb', subPath: 'run-1' },
      ],
      workingDir: '/mnt/wandb/src',
    });
    expect(t.spec.containers[1]).toEqual({ name: 'side' });
  });

  it('refuses a user volume of the same name or a mount at the same path, naming it', () => {
    const t = template();
    t.spec.volumes.push({ name: 'launch-code', emptyDir: {} });
    const clash = (() => {
      try {
        addCodeMount([t], { claimName: 'code', subPath: 'run-1', mountPath: '/mnt/wandb' }, () => 'spec.template.spec');
      } catch (e) {
        return e as LaunchError;
      }
    })();
    expect(clash?.code).toBe('run.code_volume_clash');
    expect(clash?.message).toContain('spec.template.spec.volumes[1]');
    expect(clash?.message).toContain('"launch-code"');
    expect(t.spec.volumes).toHaveLength(2);

    const u = template();
    u.spec.containers[0]!.volumeMounts!.push({ name: 'mine', mountPath: '/mnt/wandb/' });
    expect(() => addCodeMount([u], { claimName: 'code', subPath: 'run-1', mountPath: '/mnt/wandb' }, () => 'spec.template.spec')).toThrow(
      /spec\.template\.spec\.containers\[0\]\.volumeMounts\[1\] is a volume mounted at \/mnt\/wandb/,
    );
  });
});

describe('buildJobManifest with code', () => {
  it('mounts the code into the first container of every pod template of a custom resource, and annotates the object', () => {
    const task = (name: string) => ({
      name,
      replicas: 1,
      template: {
        spec: {
          containers: [
            { name: `${name}-c`, image: 'x' },
            { name: 'sidecar', image: 'y' },
          ],
        },
      },
    });
    const request = kubeRequest({
      resourceArgs: { apiVersion: 'batch.volcano.sh/v1alpha1', kind: 'Job', spec: { tasks: [task('master'), task('worker')] } },
      workingDir: '/mnt/wandb',
      code: { dir: '/tmp/code', mountPath: '/mnt/wandb' },
    });
    const manifest = buildJobManifest({ request, agentName: 'a', namespace: 'ml', code: { claimName: 'code', subPath: 'run-1' } }) as any;
    for (const t of manifest.spec.tasks) {
      expect(t.template.spec.volumes).toEqual([{ name: 'launch-code', persistentVolumeClaim: { claimName: 'code' } }]);
      expect(t.template.spec.containers[0].volumeMounts).toEqual([{ name: 'launch-code', mountPath: '/mnt/wandb', subPath: 'run-1' }]);
      expect(t.template.spec.containers[0].workingDir).toBe('/mnt/wandb');
      expect(t.template.spec.containers[1].volumeMounts).toBeUndefined();
    }
    expect(manifest.metadata.annotations['launch.dev/code']).toBe('code/run-1');
  });

  it('adds nothing for a request without code', () => {
    const manifest = buildJobManifest({
      request: kubeRequest({ workingDir: '/home/me' }),
      agentName: 'a',
      namespace: 'ml',
      code: { claimName: 'code', subPath: 'run-1' },
    }) as any;
    expect(manifest.spec.template.spec.volumes).toBeUndefined();
    expect(manifest.spec.template.spec.containers[0].workingDir).toBeUndefined();
    expect(manifest.metadata.annotations['launch.dev/code']).toBeUndefined();
  });
});

describe('codePvc option', () => {
  it('checks the claim name and the mount path', () => {
    const issues = (input: unknown) => {
      try {
        parseKubernetesRunnerOptions({ codePvc: input });
      } catch (e) {
        expect(LaunchValidationError.isInstance(e)).toBe(true);
        return (e as LaunchValidationError).issues.map((i) => i.path);
      }
      return [];
    };
    expect(issues({ name: 'launch-code', mountPath: '/mnt/code' })).toEqual([]);
    expect(issues({ name: 'Launch_Code', mountPath: '/mnt/code' })).toEqual(['codePvc.name']);
    expect(issues({ name: 'launch-code', mountPath: 'mnt/code' })).toEqual(['codePvc.mountPath']);
    expect(issues({ name: 'launch-code' })).toEqual(['codePvc.mountPath']);
    expect(issues({ name: 'launch-code', mountPath: '/x', size: 1 })).toHaveLength(1);
  });
});
