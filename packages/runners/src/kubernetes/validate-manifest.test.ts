import { LaunchValidationError, normalizeLaunchSpec, silentLogger, type RunRequest } from '@launch/core';
import { describe, expect, it } from 'vitest';
import { buildJobManifest } from './manifest.js';
import { createKubernetesRunner } from './runner.js';
import { builtInModel, findManifestIssues, validateManifest } from './validate-manifest.js';

const request = (resourceArgs: Record<string, unknown>, extra: Partial<RunRequest> = {}): RunRequest => ({
  runId: 'run1',
  itemId: 'item-1',
  queue: 'q',
  agentName: 'agent',
  spec: { entity: 'e', project: 'p' },
  image: 'img:1',
  entryPoint: ['python', 'train.py'],
  args: [],
  env: { WANDB_RUN_ID: 'run1', WANDB_API_KEY: 'k'.repeat(40) },
  resourceArgs,
  ...extra,
});

const rendered = (args: Record<string, unknown>) =>
  buildJobManifest({ request: request(args), agentName: 'agent', namespace: 'ns', apiKeySecret: 'wandb-api-key-run1' });
const messages = (manifest: unknown) => findManifestIssues(manifest).map((i) => `${i.path}: ${i.message}`);

describe('manifests checked against their kind schema', () => {
  it('accepts what the runner renders from W&B docs examples (Job queue config, Volcano, Kubeflow PyTorchJob)', () => {
    const job = {
      spec: {
        template: {
          spec: {
            containers: [{ env: [{ name: 'MY_ENV_VAR', value: 'some-value' }], resources: { requests: { cpu: '1000m', memory: '1Gi' }, limits: { cpu: 1 } } }],
          },
        },
      },
      metadata: { labels: { queue: 'k8s-test' } },
    };
    expect(messages(rendered(job))).toEqual([]);
    const pytorch = {
      apiVersion: 'kubeflow.org/v1',
      kind: 'PyTorchJob',
      metadata: { name: 'run1-pytorch-job' },
      spec: {
        pytorchReplicaSpecs: {
          Master: { replicas: 1, restartPolicy: 'Never', template: { spec: { containers: [{ name: 'pytorch', image: 'img:1', imagePullPolicy: 'Always' }] } } },
          Worker: { replicas: 2, restartPolicy: 'Never', template: { spec: { containers: [{ name: 'pytorch', image: 'img:1', imagePullPolicy: 'Always' }] } } },
        },
        ttlSecondsAfterFinished: 600,
      },
    };
    expect(messages(rendered(pytorch))).toEqual([]);
    const volcano = {
      apiVersion: 'batch.volcano.sh/v1alpha1',
      kind: 'Job',
      spec: { minAvailable: 1, tasks: [{ replicas: 1, name: 'master', template: { spec: { containers: [{ name: 'm' }] } } }] },
    };
    expect(messages(rendered(volcano))).toEqual([]);
  });

  it('refuses unknown top-level fields and misplaced or misspelt ones, by JSON path with "did you mean"', () => {
    const bad = {
      replicas: 2,
      spec: {
        template: {
          spec: {
            containers: [{ resources: { volumeMounts: [{ name: 'data', mountPath: '/data' }] }, imagePullPolocy: 'Always', env: [{ name: 'N', value: 3 }] }],
          },
        },
      },
    };
    expect(messages(rendered(bad))).toEqual([
      'replicas: unknown field',
      'spec.template.spec.containers[0].resources.volumeMounts: unknown field (did you mean spec.template.spec.containers[0].volumeMounts?)',
      'spec.template.spec.containers[0].imagePullPolocy: unknown field (did you mean spec.template.spec.containers[0].imagePullPolicy?)',
      'spec.template.spec.containers[0].env[0].value: expected a string, found number 3',
    ]);
    expect(() => validateManifest(rendered(bad))).toThrow(LaunchValidationError);
    try {
      validateManifest(rendered(bad));
    } catch (error) {
      const e = error as LaunchValidationError;
      expect([e.stage, e.category, e.code]).toEqual(['run', 'InvalidSpec', 'run.invalid_manifest']);
      expect(e.message).toContain('spec.template.spec.containers[0].resources.volumeMounts: unknown field (did you mean');
    }
  });

  it('checks the pod templates and metadata of a custom resource, not its operator-defined fields', () => {
    const cr = {
      apiVersion: 'kubeflow.org/v1',
      kind: 'PyTorchJob',
      metadata: { labls: { a: 'b' } },
      spec: { anyOperatorField: 1, pytorchReplicaSpecs: { Master: { template: { spec: { containers: [{ name: 'x', nme: 'y' }] } } } } },
    };
    expect(messages(rendered(cr))).toEqual([
      'metadata.labls: unknown field (did you mean metadata.labels?)',
      'spec.pytorchReplicaSpecs.Master.template.spec.containers[0].nme: unknown field (did you mean spec.pytorchReplicaSpecs.Master.template.spec.containers[0].name?)',
    ]);
  });

  it("refuses W&B's `kubernetes:` wrapper nested inside resource_args.kubernetes instead of running a plain Job", () => {
    const wrapped = { kubernetes: { apiVersion: 'kubeflow.org/v1', kind: 'PyTorchJob', spec: { pytorchReplicaSpecs: {} } } };
    const issues = findManifestIssues(rendered(wrapped));
    expect(issues.map((i) => i.path)).toEqual(['kubernetes']);
    expect(issues[0]!.message).toContain("W&B's queue-config wrapper");
  });

  it('the wrapper at the resource_args level is what W&B reads: resource_args.kubernetes is the PyTorchJob', () => {
    const { spec } = normalizeLaunchSpec({
      resource: 'kubernetes',
      resource_args: {
        kubernetes: {
          apiVersion: 'kubeflow.org/v1',
          kind: 'PyTorchJob',
          spec: { pytorchReplicaSpecs: { Master: { template: { spec: { containers: [{ name: 'pytorch' }] } } } } },
        },
      },
    });
    const manifest = rendered(spec.resource_args!.kubernetes as Record<string, unknown>);
    expect([manifest.apiVersion, manifest.kind]).toEqual(['kubeflow.org/v1', 'PyTorchJob']);
    expect(messages(manifest)).toEqual([]);
  });

  it("W&B's old flat tolerations, converted by normalizeLaunchSpec, render a valid Job", () => {
    const { spec, warnings } = normalizeLaunchSpec({
      resource: 'kubernetes',
      resource_args: { kubernetes: { tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }] } },
    });
    expect(warnings.map((w) => w.path)).toContain('resource_args.kubernetes.tolerations');
    const manifest = rendered(spec.resource_args!.kubernetes as Record<string, unknown>);
    expect(messages(manifest)).toEqual([]);
    expect((manifest as any).spec.template.spec.tolerations).toEqual([{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    // Unconverted, the flat key is exactly what the schema check refuses.
    expect(messages(rendered({ tolerations: [] }))).toEqual(['tolerations: unknown field']);
  });

  it('maps built-in kinds to their model and leaves custom groups alone', () => {
    expect(builtInModel('batch/v1', 'Job')).toBe('V1Job');
    expect(builtInModel('apps/v1', 'Deployment')).toBe('V1Deployment');
    expect(builtInModel('v1', 'Service')).toBe('V1Service');
    expect(builtInModel('kubeflow.org/v1', 'PyTorchJob')).toBeUndefined();
    expect(builtInModel('jobset.x-k8s.io/v1alpha2', 'JobSet')).toBeUndefined();
  });

  it('the runner refuses an invalid manifest before touching any cluster, and its plan lists the same issues', async () => {
    const runner = createKubernetesRunner({ agentName: 'agent', kubeconfigPath: '/nonexistent/kubeconfig' });
    try {
      const bad = request({ spec: { template: { spec: { containers: [{ resources: { volumeMounts: [] } }] } } } });
      const plan = runner.plan(bad);
      expect(plan.issues.map((i) => i.path)).toEqual(['spec.template.spec.containers[0].resources.volumeMounts']);
      expect(plan.manifest?.kind).toBe('Job');
      // The plan never holds the key: it is read from the per-run secret.
      expect(JSON.stringify(plan)).not.toContain('k'.repeat(40));
      const error = await runner.run(bad, { logger: silentLogger }).then(
        () => undefined,
        (e: unknown) => e as LaunchValidationError,
      );
      expect(error?.code).toBe('run.invalid_manifest');
      expect(error?.message).toContain('resources.volumeMounts: unknown field (did you mean spec.template.spec.containers[0].volumeMounts?)');
      const services = request(
        {},
        {
          spec: {
            entity: 'e',
            project: 'p',
            additional_services: [{ config: { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { prots: [] } } }],
          },
        },
      );
      expect(runner.plan(services).issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
        'additional_services[0].config.spec.prots: unknown field (did you mean additional_services[0].config.spec.ports?)',
      ]);
    } finally {
      await runner.close();
    }
  });
});
