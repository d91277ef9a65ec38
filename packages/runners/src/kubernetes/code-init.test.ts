import { LaunchError, LaunchValidationError, silentLogger, type RunRequest } from '@launch/core';
import { describe, expect, it } from 'vitest';
import { CODE_INIT_CONTAINER } from './code-mount.js';
import { diagnosePod } from './diagnose.js';
import { buildJobManifest, FORCED_SECURITY_CONTEXT } from './manifest.js';
import { parseKubernetesRunnerOptions } from './options.js';
import { createKubernetesRunner } from './runner.js';
import { kubeRequest } from './test-fixtures.js';

type Obj = Record<string, any>;

const IMAGE = 'ghcr.io/acme/launch-agent:0.1.0';
const SOURCE = { kind: 'wandb-job', job: 'acme/vision/job-train:v3', type: 'artifact', sourceString: 'acme/vision/source-train:v2' } as const;
const KEY = 'secret-key-1234567890';

/** A base-image W&B job's request as the agent builds it: the code, its source, and /mnt/wandb[/src] to work in. */
function codeRequest(overrides: Partial<RunRequest> = {}): RunRequest {
  return kubeRequest({
    image: 'python:3.12-slim',
    spec: { entity: 'acme', project: 'vision', resource: 'kubernetes', job: 'acme/vision/job-train:latest' },
    entryPoint: ['python', 'train.py'],
    env: { WANDB_API_KEY: KEY, WANDB_BASE_URL: 'https://api.wandb.example', WANDB_RUN_ID: 'abc123', WANDB_PROJECT: 'vision' },
    workingDir: '/mnt/wandb/src',
    code: { dir: '/tmp/launch-code-x', mountPath: '/mnt/wandb', source: { ...SOURCE } },
    ...overrides,
  });
}

const build = (request: RunRequest, extra: Obj = {}) =>
  buildJobManifest({ request, agentName: 'a', namespace: 'ml', apiKeySecret: 'wandb-api-key-abc123', codeInit: { image: IMAGE }, ...extra }) as Obj;

describe('buildJobManifest: the code init container filling an emptyDir', () => {
  it('adds the emptyDir, the hardened init container with the key by secret reference, the mount and the working directory', () => {
    const manifest = build(codeRequest());
    const pod = manifest.spec.template.spec;
    expect(pod.volumes).toEqual([{ name: 'launch-code', emptyDir: {} }]);
    expect(pod.initContainers).toEqual([
      {
        name: 'wandb-source-code-init',
        image: IMAGE,
        command: ['launch-agent', 'fetch-code', '--job=acme/vision/job-train:v3', '--dest=/mnt/wandb'],
        env: [
          { name: 'WANDB_API_KEY', valueFrom: { secretKeyRef: { name: 'wandb-api-key-abc123', key: 'password' } } },
          { name: 'WANDB_BASE_URL', value: 'https://api.wandb.example' },
        ],
        volumeMounts: [{ name: 'launch-code', mountPath: '/mnt/wandb' }],
        securityContext: FORCED_SECURITY_CONTEXT,
      },
    ]);
    // A copy, never the frozen object itself.
    expect(pod.initContainers[0].securityContext).not.toBe(FORCED_SECURITY_CONTEXT);
    const main = pod.containers[0];
    expect(main).toMatchObject({
      image: 'python:3.12-slim',
      command: ['python', 'train.py'],
      volumeMounts: [{ name: 'launch-code', mountPath: '/mnt/wandb' }],
      workingDir: '/mnt/wandb/src',
      securityContext: FORCED_SECURITY_CONTEXT,
    });
    // No subPath and no code annotation: nothing of the agent's machine to clean up.
    expect(main.volumeMounts[0].subPath).toBeUndefined();
    expect(manifest.metadata.annotations['launch.dev/code']).toBeUndefined();
    // The key is only ever a reference.
    expect(JSON.stringify(manifest)).not.toContain(KEY);
  });

  it("goes before the user's own init containers (hardened too), passes extra env, and leaves other containers alone", () => {
    const request = codeRequest({
      resourceArgs: {
        spec: {
          template: {
            spec: {
              initContainers: [{ name: 'warm-cache', image: 'busybox', securityContext: { privileged: true } }],
              containers: [{ name: 'main' }, { name: 'side', image: 'sidecar:1' }],
            },
          },
        },
      },
    });
    const pod = build(request, { codeInit: { image: IMAGE, env: { HTTPS_PROXY: 'http://proxy:3128' } } }).spec.template.spec;
    expect(pod.initContainers.map((c: Obj) => c.name)).toEqual([CODE_INIT_CONTAINER, 'warm-cache']);
    expect(pod.initContainers[1].securityContext).toEqual(FORCED_SECURITY_CONTEXT);
    expect(pod.initContainers[0].env.map((e: Obj) => e.name)).toEqual(['WANDB_API_KEY', 'WANDB_BASE_URL', 'HTTPS_PROXY']);
    expect(pod.containers[1].volumeMounts).toBeUndefined();
  });

  it('mounts the code in the first container of every pod template of a custom resource', () => {
    const task = (name: string) => ({ name, replicas: 1, template: { spec: { containers: [{ name: `${name}-c`, image: 'x' }] } } });
    const request = codeRequest({
      resourceArgs: { apiVersion: 'batch.volcano.sh/v1alpha1', kind: 'Job', spec: { tasks: [task('master'), task('worker')] } },
      workingDir: '/mnt/wandb',
    });
    const manifest = build(request);
    expect(manifest.spec.tasks).toHaveLength(2);
    for (const t of manifest.spec.tasks) {
      expect(t.template.spec.volumes).toEqual([{ name: 'launch-code', emptyDir: {} }]);
      expect(t.template.spec.initContainers.map((c: Obj) => c.name)).toEqual([CODE_INIT_CONTAINER]);
      expect(t.template.spec.containers[0].workingDir).toBe('/mnt/wandb');
    }
  });

  it("refuses a user's init container named wandb-source-code-init, naming it", () => {
    const request = codeRequest({ resourceArgs: { spec: { template: { spec: { initContainers: [{ name: CODE_INIT_CONTAINER, image: 'mine' }] } } } } });
    expect(() => build(request)).toThrow(/spec\.template\.spec\.initContainers\[0\] is an init container named "wandb-source-code-init"/);
  });

  it('adds nothing for code without a source, or without the option', () => {
    const local = build(codeRequest({ code: { dir: '/tmp/code', mountPath: '/mnt/wandb' } })).spec.template.spec;
    expect(local.initContainers).toBeUndefined();
    expect(local.volumes).toBeUndefined();
    const off = buildJobManifest({ request: codeRequest(), agentName: 'a', namespace: 'ml' }) as Obj;
    expect(off.spec.template.spec.initContainers).toBeUndefined();
  });
});

describe('kubernetes runner: choosing the code mode', () => {
  const runner = (options: Obj = {}) => createKubernetesRunner({ agentName: 'a', kubeconfigPath: '/nonexistent/kubeconfig', ...options });
  const failure = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (e) {
      expect(LaunchError.isInstance(e)).toBe(true);
      return e as LaunchError;
    }
    throw new Error('expected a failure');
  };

  it('plans the init container when only codeInitImage is set, and the PVC when both are', () => {
    const planned = runner({ codeInitImage: IMAGE }).plan(codeRequest());
    expect(planned.issues).toEqual([]);
    expect(planned.manifest?.spec).toMatchObject({ template: { spec: { initContainers: [{ name: CODE_INIT_CONTAINER, image: IMAGE }] } } });
    const both = runner({ codeInitImage: IMAGE, codePvc: { name: 'launch-code', mountPath: '/mnt/pvc' } }).plan(codeRequest());
    const pod = (both.manifest as Obj).spec.template.spec;
    expect(pod.initContainers).toBeUndefined();
    expect(pod.volumes).toEqual([{ name: 'launch-code', persistentVolumeClaim: { claimName: 'launch-code' } }]);
  });

  it('with neither option, refuses before touching the cluster, the hint naming both modes', async () => {
    const error = await failure(runner().run(codeRequest(), { logger: silentLogger }));
    expect(error).toMatchObject({ code: 'run.cannot_mount_code', stage: 'build', category: 'BuildFailed' });
    expect(error.hint).toContain('WANDB_LAUNCH_CODE_PVC_NAME and WANDB_LAUNCH_CODE_PVC_MOUNT_PATH');
    expect(error.hint).toContain('LAUNCH_CODE_INIT_IMAGE');
    expect(runner().plan(codeRequest()).issues).toEqual([expect.objectContaining({ path: 'code', found: 'neither' })]);
  });

  it("refuses code of the agent's machine (no source) in the emptyDir mode, saying the code PVC serves it", async () => {
    const local = codeRequest({ code: { dir: '/tmp/code', mountPath: '/mnt/wandb' } });
    const error = await failure(runner({ codeInitImage: IMAGE }).run(local, { logger: silentLogger }));
    expect(error).toMatchObject({ code: 'run.cannot_fetch_code', stage: 'build' });
    expect(error.message).toContain("a directory on the agent's machine");
    expect(error.hint).toContain('WANDB_LAUNCH_CODE_PVC_NAME');
    expect(runner({ codeInitImage: IMAGE }).plan(local).issues).toEqual([
      expect.objectContaining({ path: 'code', found: "a directory of the agent's machine" }),
    ]);
  });

  it('refuses the emptyDir mode when the run has no API key for the init container', async () => {
    const keyless = codeRequest({ env: { WANDB_RUN_ID: 'abc123' } });
    const error = await failure(runner({ codeInitImage: IMAGE }).run(keyless, { logger: silentLogger }));
    expect(error).toMatchObject({ code: 'run.cannot_fetch_code' });
    expect(error.message).toContain('acme/vision/source-train:v2');
    // Under Helm the release's secret holds the key.
    const helm = runner({ codeInitImage: IMAGE, releaseName: 'launch' }).plan(keyless);
    expect(helm.issues).toEqual([]);
    expect((helm.manifest as Obj).spec.template.spec.initContainers[0].env[0]).toEqual({
      name: 'WANDB_API_KEY',
      valueFrom: { secretKeyRef: { name: 'wandb-api-key-launch', key: 'password' } },
    });
  });

  it("checks secure mode on the user's manifest: the runner's own init container is allowed, a user's is not", () => {
    const secure = runner({ codeInitImage: IMAGE, secureMode: true });
    const planned = secure.plan(codeRequest());
    expect(planned.issues).toEqual([]);
    expect((planned.manifest as Obj).spec.template.spec.initContainers).toHaveLength(1);
    const user = secure.plan(
      codeRequest({ resourceArgs: { spec: { template: { spec: { initContainers: [{ name: 'x', image: 'y' }], containers: [{ name: 'main' }] } } } } }),
    );
    expect(user.issues.map((i) => i.path)).toContain('spec.template.spec.initContainers');
    // Also in a template without containers (the runner adds the container), where it would slip through otherwise.
    const bare = secure.plan(codeRequest({ resourceArgs: { spec: { template: { spec: { initContainers: [{ name: 'x', image: 'y' }] } } } } }));
    expect(bare.issues.map((i) => i.path)).toContain('spec.template.spec.initContainers');
  });

  it('refuses a malformed source and bad options, naming the field', async () => {
    const bad = codeRequest({ code: { dir: '/tmp/code', mountPath: '/mnt/wandb', source: { ...SOURCE, job: 'train --dest=/etc' } } });
    const error = await failure(runner({ codeInitImage: IMAGE }).run(bad, { logger: silentLogger }));
    expect(LaunchValidationError.isInstance(error)).toBe(true);
    expect((error as LaunchValidationError).issues.map((i) => i.path)).toEqual(['code.source.job']);
    const optionIssues = (input: Obj) => {
      try {
        parseKubernetesRunnerOptions(input);
        return [];
      } catch (e) {
        return (e as LaunchValidationError).issues.map((i) => i.path);
      }
    };
    expect(optionIssues({ codeInitImage: 'launch agent:1' })).toEqual(['codeInitImage']);
    expect(optionIssues({ codeInitImage: IMAGE, codeInitEnv: { WANDB_API_KEY: 'x' } })).toEqual(['codeInitEnv.WANDB_API_KEY']);
    expect(optionIssues({ codeInitImage: IMAGE, codeInitEnv: { 'A=B': 'x' } })).toHaveLength(1);
  });
});

describe('diagnosePod: a failed init container', () => {
  const pod = (name: string, exitCode: number) => ({
    metadata: { name: 'launch-x-1' },
    status: {
      phase: 'Failed',
      initContainerStatuses: [{ name, state: { terminated: { exitCode, reason: exitCode ? 'Error' : 'Completed' } } }],
      containerStatuses: [{ name: 'launch0', state: { waiting: { reason: 'PodInitializing' } } }],
    },
  });

  it("names the code init container and says the job's code could not be fetched", () => {
    expect(diagnosePod(pod(CODE_INIT_CONTAINER, 1))).toEqual({
      category: 'NonZeroExit',
      message: "init container wandb-source-code-init of pod launch-x-1 exited with code 1 (Error): the job's code could not be fetched",
      hint: expect.stringContaining("read the init container's log"),
    });
    expect(diagnosePod(pod('warm-cache', 2))?.message).toBe('init container warm-cache of pod launch-x-1 exited with code 2 (Error)');
    expect(diagnosePod(pod(CODE_INIT_CONTAINER, 0))).toBeUndefined();
  });
});
