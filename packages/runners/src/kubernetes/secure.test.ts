import { LaunchValidationError } from '@launch/core';
import { describe, expect, it } from 'vitest';
import { findKubernetesIssues, validateKubernetesResourceArgs } from './secure.js';
import { COREWEAVE_ARGS } from './test-fixtures.js';

const pod = (podSpec: Record<string, unknown>, container: Record<string, unknown> = {}) => ({
  spec: { template: { spec: { containers: [{ name: 'c', ...container }], ...podSpec } } },
});

const paths = (args: unknown, secureMode = false) => findKubernetesIssues(args, { secureMode }).map((i) => i.path);

describe('validateKubernetesResourceArgs', () => {
  it("accepts the seed chart's CoreWeave queue config", () => {
    expect(() => validateKubernetesResourceArgs(COREWEAVE_ARGS)).not.toThrow();
    expect(() => validateKubernetesResourceArgs(COREWEAVE_ARGS, { secureMode: true })).not.toThrow();
  });

  const refused: [string, unknown, string][] = [
    ['securityContext', pod({}, { securityContext: { privileged: true } }), 'spec.template.spec.containers[0].securityContext'],
    ['pod securityContext', pod({ securityContext: { runAsUser: 0 } }), 'spec.template.spec.securityContext'],
    ['hostPath', pod({ volumes: [{ name: 'v', hostPath: { path: '/' } }] }), 'spec.template.spec.volumes[0].hostPath'],
    [
      'serviceAccountToken',
      pod({ volumes: [{ name: 'v', projected: { sources: [{ serviceAccountToken: { path: 't' } }] } }] }),
      'spec.template.spec.volumes[0].projected.sources[0].serviceAccountToken',
    ],
    ['hostPID', pod({ hostPID: true }), 'spec.template.spec.hostPID'],
    ['hostIPC', pod({ hostIPC: true }), 'spec.template.spec.hostIPC'],
    ['hostNetwork', pod({ hostNetwork: true }), 'spec.template.spec.hostNetwork'],
    ['shareProcessNamespace', pod({ shareProcessNamespace: true }), 'spec.template.spec.shareProcessNamespace'],
    ['hostUsers', pod({ hostUsers: true }), 'spec.template.spec.hostUsers'],
    ['serviceAccountName', pod({ serviceAccountName: 'admin' }), 'spec.template.spec.serviceAccountName'],
    ['serviceAccount', pod({ serviceAccount: 'admin' }), 'spec.template.spec.serviceAccount'],
    ['automountServiceAccountToken', pod({ automountServiceAccountToken: true }), 'spec.template.spec.automountServiceAccountToken'],
    ['hostPort', pod({}, { ports: [{ containerPort: 80, hostPort: 80 }] }), 'spec.template.spec.containers[0].ports[0].hostPort'],
    [
      'Bidirectional',
      pod({}, { volumeMounts: [{ name: 'v', mountPath: '/m', mountPropagation: 'Bidirectional' }] }),
      'spec.template.spec.containers[0].volumeMounts[0].mountPropagation',
    ],
    [
      'unconfined AppArmor',
      { spec: { template: { metadata: { annotations: { 'container.apparmor.security.beta.kubernetes.io/c': 'unconfined' } }, spec: { containers: [{}] } } } },
      'spec.template.metadata.annotations.container.apparmor.security.beta.kubernetes.io/c',
    ],
    [
      'unconfined seccomp',
      { metadata: { annotations: { 'seccomp.security.alpha.kubernetes.io/pod': 'Unconfined' } } },
      'metadata.annotations.seccomp.security.alpha.kubernetes.io/pod',
    ],
  ];

  for (const [what, args, path] of refused) {
    it(`refuses ${what} and names ${path}`, () => {
      expect(paths(args)).toContain(path);
      let error: unknown;
      try {
        validateKubernetesResourceArgs(args);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(LaunchValidationError);
      expect((error as Error).message).toContain(path);
    });
  }

  it('allows falsy host fields outside secure mode', () => {
    expect(paths(pod({ hostPID: false, hostNetwork: false, automountServiceAccountToken: false }))).toEqual([]);
  });

  it('in secure mode also refuses host namespaces (any value), init containers and container commands', () => {
    const args = pod({ hostPID: false, hostIPC: false, hostNetwork: false, initContainers: [{ name: 'i' }] }, { command: ['sh'] });
    expect(paths(args)).toEqual([]);
    expect(paths(args, true).sort()).toEqual(
      [
        'spec.template.spec.hostPID',
        'spec.template.spec.hostIPC',
        'spec.template.spec.hostNetwork',
        'spec.template.spec.initContainers',
        'spec.template.spec.containers[0].command',
      ].sort(),
    );
  });

  it('lists every refused field at once, and malformed shapes by path', () => {
    const args = { metadata: { labels: { a: 1 } }, spec: { template: { spec: { hostNetwork: true, containers: 'x', volumes: [{ hostPath: {} }] } } } };
    const found = paths(args);
    expect(found).toEqual(
      expect.arrayContaining([
        'metadata.labels.a',
        'spec.template.spec.containers',
        'spec.template.spec.hostNetwork',
        'spec.template.spec.volumes[0].hostPath',
      ]),
    );
    expect(paths('nope')).toEqual(['']);
  });

  it('finds refused fields inside custom resources (Volcano tasks)', () => {
    const args = { apiVersion: 'batch.volcano.sh/v1alpha1', kind: 'Job', spec: { tasks: [{ template: { spec: { hostNetwork: true, containers: [{}] } } }] } };
    expect(paths(args)).toEqual(['spec.tasks[0].template.spec.hostNetwork']);
  });
});
