import { describe, expect, it } from 'vitest';
import { ANNOTATION, LABEL, labelValue } from './labels.js';
import { buildJobManifest, buildServiceManifest, FINALIZER, FORCED_SECURITY_CONTEXT, resolveNamespace } from './manifest.js';
import { COREWEAVE_ARGS, kubeRequest } from './test-fixtures.js';

type Obj = Record<string, any>;

describe('buildJobManifest (Job path)', () => {
  it('applies W&B defaults, labels, a name per queue item, the finalizer, image, env and the forced securityContext', () => {
    const m = buildJobManifest({ request: kubeRequest(), agentName: 'agent-1', namespace: 'ml', apiKeySecret: 'wandb-api-key-abc123' }) as Obj;
    expect(m.apiVersion).toBe('batch/v1');
    expect(m.kind).toBe('Job');
    expect(m.metadata.namespace).toBe('ml');
    // W&B's generateName prefix, with a suffix from the item id instead of a random one: the same item, the same name.
    expect(m.metadata.generateName).toBeUndefined();
    expect(m.metadata.name).toMatch(/^launch-my-team-fine-tune-[0-9a-f]{10}$/);
    const again = buildJobManifest({ request: kubeRequest(), agentName: 'agent-2', namespace: 'ml' }) as Obj;
    expect(again.metadata.name).toBe(m.metadata.name);
    const other = buildJobManifest({ request: kubeRequest({ itemId: 'another-item' }), agentName: 'agent-1', namespace: 'ml' }) as Obj;
    expect(other.metadata.name).not.toBe(m.metadata.name);
    expect(m.metadata.finalizers).toEqual([FINALIZER]);
    const long = buildJobManifest({
      request: kubeRequest({ spec: { entity: 'e'.repeat(80), project: 'p'.repeat(80), docker: { docker_image: 'i:1' } } }),
      agentName: 'a',
      namespace: 'ml',
    }) as Obj;
    expect(long.metadata.name.length).toBeLessThanOrEqual(63);
    const prefixed = buildJobManifest({
      request: kubeRequest({ resourceArgs: { metadata: { generateName: 'my-train-' } } }),
      agentName: 'a',
      namespace: 'ml',
    }) as Obj;
    expect(prefixed.metadata.name).toMatch(/^my-train-[0-9a-f]{10}$/);
    expect(m.spec.backoffLimit).toBe(0);
    expect(m.spec.ttlSecondsAfterFinished).toBe(60);
    const labels = { [LABEL.runId]: 'abc123', [LABEL.monitor]: 'true', [LABEL.agent]: 'agent-1', [LABEL.itemId]: labelValue('UnVuUXVldWVJdGVtOjE=') };
    expect(m.metadata.labels).toMatchObject(labels);
    expect(m.spec.template.metadata.labels).toMatchObject(labels);
    expect(m.metadata.annotations[ANNOTATION.itemId]).toBe('UnVuUXVldWVJdGVtOjE=');
    expect(m.metadata.annotations[ANNOTATION.queue]).toBe('gpu');
    const pod = m.spec.template.spec;
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.containers).toHaveLength(1);
    expect(pod.containers[0].name).toBe('launch0');
    expect(pod.containers[0].image).toBe('ghcr.io/acme/train:1');
    expect(pod.containers[0].securityContext).toEqual(FORCED_SECURITY_CONTEXT);
    expect(pod.containers[0].env).toContainEqual({ name: 'WANDB_API_KEY', valueFrom: { secretKeyRef: { name: 'wandb-api-key-abc123', key: 'password' } } });
    expect(pod.containers[0].env).toContainEqual({ name: 'WANDB_PROJECT', value: 'Fine Tune' });
    // The API key never appears in the manifest.
    expect(JSON.stringify(m)).not.toContain('secret-key-1234567890');
  });

  it('keeps the queue config: backoffLimit, a given name, restartPolicy, named containers; sets entry point and args', () => {
    const request = kubeRequest({
      resourceArgs: { ...structuredClone(COREWEAVE_ARGS), metadata: { name: 'my-job' } },
      entryPoint: ['python', 'train.py'],
      args: ['--lr', '0.1'],
    });
    const m = buildJobManifest({ request, agentName: 'agent-1', namespace: 'ml' }) as Obj;
    expect(m.metadata.name).toBe('my-job');
    expect(m.metadata.generateName).toBeUndefined();
    expect(m.spec.backoffLimit).toBe(1);
    const c = m.spec.template.spec.containers[0];
    expect(c.name).toBe('finetuner-llm');
    expect(c.command).toEqual(['python', 'train.py']);
    expect(c.args).toEqual(['--lr', '0.1']);
    expect(c.resources.limits['nvidia.com/gpu']).toBe(1);
    expect(m.spec.template.spec.affinity.nodeAffinity).toBeDefined();
  });

  it('sets the image only on the first container, and only for image jobs or when no container has one', () => {
    const args = { spec: { template: { spec: { containers: [{ image: 'queue/image:2' }, { name: 'side' }] } } } };
    const built = kubeRequest({ spec: { entity: 'e', project: 'p' }, image: 'built/image:3', resourceArgs: args });
    const m1 = buildJobManifest({ request: built, agentName: 'a', namespace: 'ns' }) as Obj;
    expect(m1.spec.template.spec.containers[0].image).toBe('queue/image:2');
    expect(m1.spec.template.spec.containers[0].name).toBe('launch0');
    expect(m1.spec.template.spec.containers[1].name).toBe('side');
    const m2 = buildJobManifest({ request: kubeRequest({ resourceArgs: args }), agentName: 'a', namespace: 'ns' }) as Obj;
    expect(m2.spec.template.spec.containers[0].image).toBe('ghcr.io/acme/train:1');
    expect(m2.spec.template.spec.containers[1].image).toBeUndefined();
  });

  it('adds the pull secret and strips runner keys (configFile, context, namespace)', () => {
    const request = kubeRequest({ resourceArgs: { configFile: '/k', context: 'c', namespace: 'x', wait_for_ready: false } });
    const m = buildJobManifest({
      request,
      agentName: 'a',
      namespace: 'x',
      pullSecret: 'regcred-abc123',
      ownedSecrets: ['wandb-api-key-abc123', 'regcred-abc123'],
    }) as Obj;
    expect(m.spec.template.spec.imagePullSecrets).toEqual([{ name: 'regcred-abc123' }]);
    expect(m.configFile).toBeUndefined();
    expect(m.context).toBeUndefined();
    expect(m.namespace).toBeUndefined();
    expect(m.wait_for_ready).toBeUndefined();
    expect(m.metadata.annotations[ANNOTATION.secrets]).toBe('wandb-api-key-abc123,regcred-abc123');
  });

  it('keeps the API key out of the spec annotation', () => {
    const request = kubeRequest({ spec: { entity: 'e', project: 'p', _wandb_api_key: 'spec-key-0987654321' } });
    const m = buildJobManifest({ request, agentName: 'a', namespace: 'n' }) as Obj;
    expect(m.metadata.annotations[ANNOTATION.spec]).toBe('{"entity":"e","project":"p"}');
  });

  it('refuses a job without any image', () => {
    const request = kubeRequest({ image: undefined });
    expect(() => buildJobManifest({ request, agentName: 'a', namespace: 'n' })).toThrow(/no image/);
  });
});

describe('buildJobManifest (custom resources)', () => {
  const volcano = {
    apiVersion: 'batch.volcano.sh/v1alpha1',
    kind: 'Job',
    spec: {
      minAvailable: 2,
      schedulerName: 'volcano',
      tasks: [
        { name: 'master', replicas: 1, template: { spec: { containers: [{ name: 'm' }], restartPolicy: 'Never' } } },
        { name: 'worker', replicas: 1, template: { spec: { containers: [{ name: 'w', image: 'w:1' }] } } },
      ],
    },
  };

  it('labels every pod template, puts env in every container and WANDB_RUN_ID only in the first', () => {
    const request = kubeRequest({ resourceArgs: volcano, args: ['--x'] });
    const m = buildJobManifest({ request, agentName: 'a', namespace: 'n', apiKeySecret: 's' }) as Obj;
    expect(m.apiVersion).toBe('batch.volcano.sh/v1alpha1');
    expect(m.spec.backoffLimit).toBeUndefined();
    expect(m.spec.tasks).toHaveLength(2);
    for (const task of m.spec.tasks) {
      expect(task.template.metadata.labels[LABEL.monitor]).toBe('true');
      expect(task.template.spec.containers[0].args).toEqual(['--x']);
      expect(task.template.spec.containers[0].securityContext).toEqual(FORCED_SECURITY_CONTEXT);
    }
    const names = (t: Obj) => t.template.spec.containers[0].env.map((e: Obj) => e.name);
    expect(names(m.spec.tasks[0])).toContain('WANDB_RUN_ID');
    expect(names(m.spec.tasks[1])).not.toContain('WANDB_RUN_ID');
    expect(names(m.spec.tasks[1])).toContain('WANDB_API_KEY');
    expect(m.spec.tasks[0].template.spec.containers[0].image).toBe('ghcr.io/acme/train:1');
  });

  it('refuses a custom resource without a pod template', () => {
    const request = kubeRequest({ resourceArgs: { apiVersion: 'kubeflow.org/v1', kind: 'PyTorchJob', spec: {} } });
    expect(() => buildJobManifest({ request, agentName: 'a', namespace: 'n' })).toThrow(/pod template/);
  });
});

describe('buildServiceManifest', () => {
  it('labels, names and hardens an additional service', () => {
    const config = { apiVersion: 'apps/v1', kind: 'Deployment', spec: { template: { spec: { containers: [{ name: 'db', image: 'postgres' }] } } } };
    const request = kubeRequest({ env: { WANDB_CONFIG: '{}', WANDB_API_KEY: 'k-1234567890' } });
    const m = buildServiceManifest(config, { request, agentName: 'a', namespace: 'n', apiKeySecret: 'wandb-api-key-abc123' }, 0) as Obj;
    expect(m.metadata.labels[LABEL.createdBy]).toBe('launch-agent');
    expect(m.metadata.labels[LABEL.auxiliary]).toBe('aux-my-team-fine-tune-abc123');
    expect(m.metadata.name).toBe('aux-my-team-fine-tune-abc123-0');
    expect(m.metadata.namespace).toBe('n');
    const c = m.spec.template.spec.containers[0];
    expect(c.securityContext).toEqual(FORCED_SECURITY_CONTEXT);
    expect(c.env).toContainEqual({ name: 'WANDB_CONFIG', value: '{}' });
    expect(JSON.stringify(m)).not.toContain('k-1234567890');
  });
});

describe('resolveNamespace', () => {
  it('follows W&B order', () => {
    expect(resolveNamespace({ metadata: { namespace: 'a' }, namespace: 'b' }, 'c', 'd')).toBe('a');
    expect(resolveNamespace({ namespace: 'b' }, 'c', 'd')).toBe('b');
    expect(resolveNamespace({}, 'c', 'd')).toBe('c');
    expect(resolveNamespace({}, undefined, 'd')).toBe('d');
    expect(resolveNamespace({})).toBe('default');
  });
});

describe('labelValue', () => {
  it('keeps valid values and hashes invalid ones without collisions', () => {
    expect(labelValue('abc-1')).toBe('abc-1');
    const a = labelValue('UnVuUXVldWVJdGVtOjE=');
    const b = labelValue('UnVuUXVldWVJdGVtOjE+');
    expect(a).not.toBe(b);
    for (const v of [a, b, labelValue('x'.repeat(200)), labelValue('===')]) {
      expect(v.length).toBeLessThanOrEqual(63);
      expect(v).toMatch(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/);
    }
  });
});
