import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LaunchError, LaunchValidationError, type ContextStore } from '@launch/core';
import { buildKanikoJob, kanikoJobName, type KanikoJobInput } from './job.js';
import { createKanikoBuilder } from './builder.js';
import { parseKanikoBuilderOptions } from './options.js';
import { createPvcContextStore } from './pvc-store.js';

const none = { env: [], volumes: [], volumeMounts: [], podLabels: {} };
const input = (over: Partial<KanikoJobInput> = {}): KanikoJobInput => ({
  name: 'wandb-launch-container-build-abc123',
  namespace: 'wandb',
  kanikoConfig: {},
  image: 'gcr.io/kaniko-project/executor:v1.11.0',
  context: 's3://bucket/ctx/abc123.tgz',
  dockerfile: 'Dockerfile.wandb',
  destination: '127.0.0.1:5000/launch/train:0123456789ab',
  repository: '127.0.0.1:5000/launch/train',
  buildArgs: {},
  serviceAccountName: 'default',
  activeDeadlineSeconds: 1800,
  credentials: none,
  ...over,
});
const store: ContextStore = { specificationVersion: 'v1', name: 'fake-for-options', verify: async () => undefined, upload: async () => ({ uri: 's3://b/k' }) };

function thrown(fn: () => unknown): LaunchError {
  try {
    fn();
  } catch (error) {
    expect(LaunchError.isInstance(error)).toBe(true);
    return error as LaunchError;
  }
  throw new Error('expected a throw');
}

describe('buildKanikoJob (W&B kaniko-config merge)', () => {
  it("makes W&B's Job when kaniko-config is empty", () => {
    const job = buildKanikoJob(input());
    expect(job).toEqual({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'wandb-launch-container-build-abc123', namespace: 'wandb', labels: { wandb: 'launch' } },
      spec: {
        backoffLimit: 0,
        template: {
          metadata: { labels: { wandb: 'launch' } },
          spec: {
            restartPolicy: 'Never',
            activeDeadlineSeconds: 1800,
            serviceAccountName: 'default',
            containers: [
              {
                name: 'wandb-container-build',
                image: 'gcr.io/kaniko-project/executor:v1.11.0',
                args: [
                  '--context=s3://bucket/ctx/abc123.tgz',
                  '--dockerfile=Dockerfile.wandb',
                  '--destination=127.0.0.1:5000/launch/train:0123456789ab',
                  '--cache=true',
                  '--cache-repo=127.0.0.1:5000/launch/train',
                  '--snapshot-mode=redo',
                  '--compressed-caching=false',
                ],
              },
            ],
          },
        },
      },
    });
  });

  it("lets the user's --k=v args override ours in place and add new ones; keeps their env, mounts, volumes and fields", () => {
    const kanikoConfig = {
      metadata: { labels: { team: 'ml' }, annotations: { a: 'b' } },
      spec: {
        backoffLimit: 2,
        template: {
          metadata: { labels: { wandb: 'other', app: 'build' } },
          spec: {
            serviceAccountName: 'kaniko-sa',
            nodeSelector: { pool: 'build' },
            volumes: [{ name: 'cache', emptyDir: {} }],
            containers: [
              {
                args: ['--cache=false', '--verbosity=debug', '--no-push'],
                env: [{ name: 'MY_ENV_VAR', value: 'x' }],
                volumeMounts: [{ name: 'cache', mountPath: '/cache' }],
                resources: { limits: { memory: '4Gi' } },
              },
            ],
          },
        },
      },
    };
    const before = structuredClone(kanikoConfig);
    const job = buildKanikoJob(
      input({
        kanikoConfig,
        buildArgs: { A: '1' },
        credentials: {
          env: [{ name: 'AWS_REGION', value: 'us-east-1' }],
          volumes: [{ name: 's', secret: { secretName: 's' } }],
          volumeMounts: [{ name: 's', mountPath: '/root/.aws' }],
          podLabels: { 'azure.workload.identity/use': 'true' },
        },
      }),
    );
    expect(kanikoConfig).toEqual(before); // deep copy: the config is never changed
    expect(job.metadata).toEqual({
      name: 'wandb-launch-container-build-abc123',
      namespace: 'wandb',
      labels: { team: 'ml', wandb: 'launch' },
      annotations: { a: 'b' },
    });
    expect(job.spec.backoffLimit).toBe(2);
    expect(job.spec.template.metadata.labels).toEqual({ wandb: 'launch', app: 'build', 'azure.workload.identity/use': 'true' });
    const pod = job.spec.template.spec;
    expect(pod).toMatchObject({ serviceAccountName: 'kaniko-sa', nodeSelector: { pool: 'build' }, restartPolicy: 'Never', activeDeadlineSeconds: 1800 });
    expect(pod.volumes).toEqual([
      { name: 'cache', emptyDir: {} },
      { name: 's', secret: { secretName: 's' } },
    ]);
    expect(pod.containers).toHaveLength(1);
    const c = pod.containers[0];
    expect(c.args).toEqual([
      '--context=s3://bucket/ctx/abc123.tgz',
      '--dockerfile=Dockerfile.wandb',
      '--destination=127.0.0.1:5000/launch/train:0123456789ab',
      '--cache=false',
      '--cache-repo=127.0.0.1:5000/launch/train',
      '--snapshot-mode=redo',
      '--compressed-caching=false',
      '--verbosity=debug',
      '--no-push',
      '--build-arg=A=1',
    ]);
    expect(c.env).toEqual([
      { name: 'MY_ENV_VAR', value: 'x' },
      { name: 'AWS_REGION', value: 'us-east-1' },
    ]);
    expect(c.volumeMounts).toEqual([
      { name: 'cache', mountPath: '/cache' },
      { name: 's', mountPath: '/root/.aws' },
    ]);
    expect(c.resources).toEqual({ limits: { memory: '4Gi' } });
    expect(c.name).toBe('wandb-container-build');
  });

  it("keeps the user's container name and image, and their --build-arg instead of ours", () => {
    const job = buildKanikoJob(
      input({
        buildArgs: { A: '1' },
        kanikoConfig: { spec: { template: { spec: { containers: [{ name: 'k', image: 'mirror/kaniko:1', args: ['--build-arg=B=2'] }] } } } },
      }),
    );
    const c = job.spec.template.spec.containers[0];
    expect(c).toMatchObject({ name: 'k', image: 'mirror/kaniko:1' });
    expect(c.args.filter((a: string) => a.startsWith('--build-arg'))).toEqual(['--build-arg=B=2']);
  });

  it('refuses two containers, non-flag args and wrongly shaped fields, naming the field', () => {
    const two = thrown(() => buildKanikoJob(input({ kanikoConfig: { spec: { template: { spec: { containers: [{}, {}] } } } } })));
    expect(two.message).toContain('has 2 containers');
    const arg = thrown(() => buildKanikoJob(input({ kanikoConfig: { spec: { template: { spec: { containers: [{ args: ['cache=false'] }] } } } } })));
    expect(arg.message).toContain('spec.template.spec.containers[0].args[0]');
    expect(arg.message).toContain('"cache=false"');
    const shape = thrown(() => buildKanikoJob(input({ kanikoConfig: { spec: { template: 'x' } } })));
    expect(shape.message).toContain('spec.template must be an object, found "x"');
    const list = thrown(() => buildKanikoJob(input({ kanikoConfig: { spec: { template: { spec: { volumes: {} } } } } })));
    expect(list.message).toContain('spec.template.spec.volumes must be a list');
  });

  it('names the Job <build-job-name>-<run id> as a DNS name', () => {
    expect(kanikoJobName('wandb-launch-container-build', 'AbC_12')).toBe('wandb-launch-container-build-abc-12');
    expect(kanikoJobName('x', 'r'.repeat(100))).toHaveLength(63);
  });
});

describe('kaniko builder options', () => {
  it('refuses what W&B refuses: no context store and no PVC', () => {
    const error = (() => {
      try {
        createKanikoBuilder({});
      } catch (e) {
        return e as LaunchValidationError;
      }
      throw new Error('expected a throw');
    })();
    expect(LaunchError.isInstance(error)).toBe(true);
    expect(error.message).toContain('contextStore');
    expect(error.message).toContain('build-context-store');
  });

  it('wants secretName and secretKey together, and names unknown and bad fields', () => {
    expect(() => parseKanikoBuilderOptions({ contextStore: store, secretName: 'aws' })).toThrow(/secretKey/);
    expect(() => parseKanikoBuilderOptions({ contextStore: store, buildJobNam: 'x' })).toThrow(/buildJobName/);
    expect(() => parseKanikoBuilderOptions({ contextStore: store, buildJobName: 'Bad_Name' })).toThrow(/DNS label/);
    expect(() => parseKanikoBuilderOptions({ contextStore: store, destination: 'reg/x:tag' })).toThrow(/without a tag/);
  });

  it('takes the namespace from the option, else the service account file, else wandb', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kaniko-ns-'));
    try {
      const file = join(dir, 'namespace');
      expect(parseKanikoBuilderOptions({ pvcName: 'ctx' }, file).namespace).toBe('wandb');
      writeFileSync(file, 'ml-builds\n');
      expect(parseKanikoBuilderOptions({ pvcName: 'ctx' }, file).namespace).toBe('ml-builds');
      expect(parseKanikoBuilderOptions({ pvcName: 'ctx', namespace: 'other' }, file).namespace).toBe('other');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('PVC context store', () => {
  it('copies to the mount path, answers tar:///context/<key>, deletes, and refuses keys with paths', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kaniko-pvc-'));
    try {
      const src = join(dir, 'src.tgz');
      writeFileSync(src, 'archive');
      const pvc = createPvcContextStore({ mountPath: join(dir, 'mnt') });
      const { uri } = await pvc.upload(src, 'run1.tgz', { logger: undefined as never });
      expect(uri).toBe('tar:///context/run1.tgz');
      expect(readFileSync(join(dir, 'mnt', 'run1.tgz'), 'utf8')).toBe('archive');
      await pvc.verify({} as never);
      await pvc.delete!(uri, {} as never);
      expect(() => readFileSync(join(dir, 'mnt', 'run1.tgz'))).toThrow();
      await expect(pvc.upload(src, '../escape.tgz', {} as never)).rejects.toThrow(/file name/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
