import { basename } from 'node:path';
import { parseAgentConfig } from '@launch/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ciValuesFiles, find, objectProblems, one, parseYaml, startHelm, type Helm, type KubeObject } from './helm.js';

let helm: Helm;

beforeAll(async () => {
  helm = await startHelm();
}, 180_000);

afterAll(() => helm?.close());

const KEY = 'a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2';
const matrix: Array<[string, string[]]> = [['default values', []], ...ciValuesFiles.map((f): [string, string[]] => [basename(f), [f]])];

function deployment(objects: KubeObject[]): KubeObject {
  return one(objects, 'Deployment');
}

function container(objects: KubeObject[]) {
  return deployment(objects).spec.template.spec.containers[0];
}

function envOf(objects: KubeObject[]): Record<string, unknown> {
  return Object.fromEntries(container(objects).env.map((e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom]));
}

/** The namespaces a release owns: the agent's and its target namespaces (from the RoleBindings' subjects and names). */
function agentNamespace(objects: KubeObject[]): string {
  return deployment(objects).metadata.namespace!;
}

describe('helm lint --strict', () => {
  it.each(matrix)('passes with %s', async (_name, files) => {
    const r = await helm.run(['lint', '--strict', '--namespace', 'release-ns', helmChart(), ...files.flatMap((f) => ['-f', f])]);
    expect(r.stderr + r.stdout).toContain('0 chart(s) failed');
    expect(r.code).toBe(0);
  });
});

function helmChart(): string {
  return new URL('..', import.meta.url).pathname;
}

describe('rendered manifests', () => {
  it.each(matrix)('are valid Kubernetes objects, all in namespaces the release owns (%s)', async (_name, files) => {
    const objects = await helm.template({ valuesFiles: files });
    const problems = (await Promise.all(objects.map(objectProblems))).flat();
    expect(problems).toEqual([]);

    const own = agentNamespace(objects);
    const targets = find(objects, 'Role').map((r) => r.metadata.namespace!);
    expect(targets).toContain(own);
    const owned = new Set([own, ...targets]);
    for (const o of objects) {
      // Nothing cluster-scoped (no ClusterRole, no ClusterRoleBinding) and nothing without a namespace.
      expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBeTruthy();
      expect(owned.has(o.metadata.namespace!), `${o.kind} ${o.metadata.name} in ${o.metadata.namespace}`).toBe(true);
    }
    // Only the Roles, RoleBindings and API key secrets go to target namespaces; everything else is the agent's.
    for (const o of objects.filter((x) => x.metadata.namespace !== own)) {
      expect(['Role', 'RoleBinding', 'Secret']).toContain(o.kind);
      if (o.kind === 'Secret') expect(o.metadata.name).toBe('wandb-api-key-rel');
    }
    // No two objects of a kind share a name in a namespace.
    const keys = objects.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('the validation itself refuses what the API server would refuse', async () => {
    const objects = await helm.template();
    const broken = structuredClone(deployment(objects));
    broken.spec.template.spec.containers[0].ports = [{ name: 'health', containerPort: 'eighty' }];
    broken.metadata.labels!.team = 'not a label value';
    const problems = await objectProblems(broken);
    expect(problems.join('\n')).toContain('containerPort');
    expect(problems.join('\n')).toContain('label team=not a label value is invalid');
    expect(await objectProblems({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'x' } })).toEqual([
      'ClusterRole /x: no schema for rbac.authorization.k8s.io/v1 ClusterRole',
    ]);
  });

  it.each(matrix)('carry a launch config the agent accepts (%s)', async (_name, files) => {
    const objects = await helm.template({ valuesFiles: files });
    const cm = one(objects, 'ConfigMap', 'wandb-launch-configmap-rel');
    const config = parseYaml(cm.data['launch-config.yaml']);
    expect(() => parseAgentConfig(config, `${_name} launchConfig`)).not.toThrow();
    expect(cm.data['wandb-base-url']).toMatch(/^https?:\/\//);
  });
});

describe('W&B values files install unchanged', () => {
  it('keeps W&B’s release-scoped names and selector, so an upgrade updates the agent in place', async () => {
    const objects = await helm.template({ release: 'wandb-launch', valuesFiles: ciValuesFiles.filter((f) => f.endsWith('wandb-basic-values.yaml')) });
    const d = deployment(objects);
    expect(d.metadata).toMatchObject({ name: 'launch-agent-wandb-launch', namespace: 'wandb' });
    expect(d.spec.selector.matchLabels).toEqual({ app: 'launch-agent-wandb-launch' });
    expect(d.spec.template.spec.serviceAccountName).toBe('wandb-launch-serviceaccount-wandb-launch');
    one(objects, 'ConfigMap', 'wandb-launch-configmap-wandb-launch', 'wandb');
    one(objects, 'PodDisruptionBudget', 'launch-agent-wandb-launch', 'wandb');
    // The API key secret in every target namespace, W&B's type and key.
    const secrets = find(objects, 'Secret', 'wandb-api-key-wandb-launch');
    expect(secrets.map((s) => s.metadata.namespace).sort()).toEqual(['default', 'wandb']);
    for (const s of secrets) {
      expect(s.type).toBe('kubernetes.io/basic-auth');
      expect(Buffer.from(s.data.password, 'base64').toString()).toBe('<an-api-key>');
    }
    // `gitCreds: |` (empty) makes no secret; an annotation key without a value is dropped, not rendered as null.
    expect(find(objects, 'Secret').filter((s) => s.metadata.name.startsWith('git-creds'))).toEqual([]);
    expect(one(objects, 'ServiceAccount').metadata.annotations).toBeUndefined();
  });

  it('reads the seed’s useExternalWandbSecret: "" as false (the chart makes the key secrets)', async () => {
    const objects = await helm.template({ valuesFiles: ciValuesFiles.filter((f) => f.endsWith('coreweave-values.yaml')) });
    expect(
      find(objects, 'Secret', 'wandb-api-key-rel')
        .map((s) => s.metadata.namespace)
        .sort(),
    ).toEqual(['tenant-ml-launch', 'tenant-ml-training']);
    expect(
      deployment(objects).spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1]
        .values,
    ).toEqual(['LAS1']);
  });

  it('takes W&B’s list form of additionalEnvVars and additionalSecretEnvVars', async () => {
    const objects = await helm.template({ valuesFiles: ciValuesFiles.filter((f) => f.endsWith('wandb-full-values.yaml')) });
    const env = envOf(objects);
    expect(env.MY_ENV_VAR).toBe('my-value');
    expect(env.RETRIES).toBe('3');
    expect(env.MY_SECRET_ENV_VAR).toEqual({ secretKeyRef: { name: 'launch-agent-secret-env-vars-rel', key: 'MY_SECRET_ENV_VAR' } });
    const secret = one(objects, 'Secret', 'launch-agent-secret-env-vars-rel', 'wandb');
    expect(Buffer.from(secret.data.MY_SECRET_ENV_VAR, 'base64').toString()).toBe('my-secret-value');
    const pod = deployment(objects).spec.template;
    expect(pod.metadata.labels).toMatchObject({ team: 'ml-platform', app: 'launch-agent-rel' });
    expect(pod.metadata.annotations['cluster-autoscaler.kubernetes.io/safe-to-evict']).toBe('false');
    expect(pod.spec.tolerations[0].key).toBe('dedicated');
    expect(pod.spec.affinity.nodeAffinity).toBeDefined();
    expect(pod.spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(one(objects, 'PodDisruptionBudget').spec.minAvailable).toBe(0);
    expect(env.WANDB_LAUNCH_START_TIMEOUT).toBe('900');
    expect(one(objects, 'ConfigMap', 'wandb-launch-configmap-rel').data['wandb-base-url']).toBe('https://wandb.example.com');
  });

  it('takes the map form too, sorted by name', async () => {
    const objects = await helm.template({ setJson: { additionalEnvVars: { ZED: 'z', ALPHA: 1 }, additionalSecretEnvVars: { TOKEN: 's3cret' } } });
    const names = container(objects).env.map((e: { name: string }) => e.name);
    expect(names.indexOf('ALPHA')).toBeLessThan(names.indexOf('ZED'));
    expect(envOf(objects).ALPHA).toBe('1');
    expect(envOf(objects).TOKEN).toEqual({ secretKeyRef: { name: 'launch-agent-secret-env-vars-rel', key: 'TOKEN' } });
  });
});

describe('the agent pod', () => {
  it('is hardened: non-root uid 1000, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp', async () => {
    const objects = await helm.template();
    const pod = deployment(objects).spec.template.spec;
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      fsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const c = pod.containers[0];
    expect(c.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.initContainers).toBeUndefined();
    // The writable paths are emptyDirs: HOME (state dir under it) and /tmp; the config is read-only at W&B's path.
    const mounts = Object.fromEntries(c.volumeMounts.map((m: { mountPath: string; name: string }) => [m.mountPath, m]));
    const volumes = Object.fromEntries(pod.volumes.map((v: { name: string }) => [v.name, v]));
    expect(volumes[mounts['/home/launch_agent'].name].emptyDir).toBeDefined();
    expect(volumes[mounts['/tmp'].name].emptyDir).toBeDefined();
    expect(mounts['/home/launch_agent/.config/wandb']).toMatchObject({ name: 'wandb-launch-config', readOnly: true });
    expect(volumes['wandb-launch-config'].configMap.name).toBe('wandb-launch-configmap-rel');
    expect(c.resources).toEqual({ limits: { cpu: '1000m', memory: '1Gi' } });
  });

  it('has liveness /healthz and readiness /readyz probes on the named port from health.port, passed as --health-port', async () => {
    const objects = await helm.template({ setJson: { 'health.port': 9191 } });
    const c = container(objects);
    expect(c.ports).toEqual([{ name: 'health', containerPort: 9191, protocol: 'TCP' }]);
    expect(c.args).toEqual(['--health-port', '9191', '--health-host', '0.0.0.0']);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(c.livenessProbe.periodSeconds).toBe(20);

    const off = container(await helm.template({ setJson: { 'health.enabled': false, 'agent.extraArgs': ['-v'] } }));
    expect(off.args).toEqual(['-v']);
    expect(off.ports).toBeUndefined();
    expect(off.livenessProbe).toBeUndefined();
    expect(off.readinessProbe).toBeUndefined();
  });

  it('names the agent after the release (LAUNCH_AGENT_NAME, WANDB_RELEASE_NAME) and reads the key from the release’s secret', async () => {
    const env = envOf(await helm.template({ release: 'prod', setJson: { 'agent.apiKey': KEY } }));
    expect(env.LAUNCH_AGENT_NAME).toBe('prod');
    expect(env.WANDB_RELEASE_NAME).toBe('prod');
    expect(env.WANDB_API_KEY).toEqual({ secretKeyRef: { name: 'wandb-api-key-prod', key: 'password' } });
    expect(env.WANDB_BASE_URL).toEqual({ configMapKeyRef: { name: 'wandb-launch-configmap-prod', key: 'wandb-base-url' } });
    expect(env.WANDB_LAUNCH_START_TIMEOUT).toBe('1800');
    expect(env.HOME).toBe('/home/launch_agent');
    expect(JSON.stringify(env)).not.toContain(KEY);

    const named = envOf(await helm.template({ release: 'prod', setJson: { 'agent.name': 'gpu-agent' } }));
    expect(named.LAUNCH_AGENT_NAME).toBe('gpu-agent');
  });

  it('gives the code init container the agent image (LAUNCH_CODE_INIT_IMAGE), another image, or none with "-"', async () => {
    const image = 'registry.example.com/ml/launch-agent:0.1.0';
    expect(envOf(await helm.template({ setJson: { 'agent.image': image } })).LAUNCH_CODE_INIT_IMAGE).toBe(image);
    expect(envOf(await helm.template({ setJson: { 'agent.image': image, codeInitImage: 'registry.example.com/ml/fetch:1' } })).LAUNCH_CODE_INIT_IMAGE).toBe(
      'registry.example.com/ml/fetch:1',
    );
    expect(envOf(await helm.template({ setJson: { 'agent.image': image, codeInitImage: '-' } }))).not.toHaveProperty('LAUNCH_CODE_INIT_IMAGE');
  });

  it('without an API key makes no secret and gives no key variable (the embedded queue needs none)', async () => {
    const objects = await helm.template({ valuesFiles: ciValuesFiles.filter((f) => f.endsWith('embedded-values.yaml')) });
    expect(find(objects, 'Secret')).toEqual([]);
    const env = envOf(objects);
    expect(env.WANDB_API_KEY).toBeUndefined();
    expect(env.WANDB_RELEASE_NAME).toBeUndefined();
    expect(env.LAUNCH_AGENT_NAME).toBe('rel');
    // namespace: "" puts everything in the release's namespace.
    expect(new Set(objects.map((o) => o.metadata.namespace))).toEqual(new Set(['release-ns']));
  });

  it('with an external secret reads wandb-api-key-<release> and creates no secret', async () => {
    const objects = await helm.template({ valuesFiles: ciValuesFiles.filter((f) => f.endsWith('external-secret-values.yaml')) });
    expect(find(objects, 'Secret')).toEqual([]);
    expect(envOf(objects).WANDB_API_KEY).toEqual({ secretKeyRef: { name: 'wandb-api-key-rel', key: 'password' } });
    expect(envOf(objects).WANDB_RELEASE_NAME).toBe('rel');
  });

  it('mounts a custom CA bundle and points REQUESTS_CA_BUNDLE and NODE_EXTRA_CA_CERTS at it', async () => {
    const objects = await helm.template({ valuesFiles: ciValuesFiles.filter((f) => f.endsWith('ca-bundle-values.yaml')) });
    const path = '/usr/local/share/ca-certificates/custom-ca.crt';
    expect(envOf(objects)).toMatchObject({ REQUESTS_CA_BUNDLE: path, NODE_EXTRA_CA_CERTS: path });
    const c = container(objects);
    expect(c.volumeMounts).toContainEqual({ name: 'custom-cabundle', mountPath: path, subPath: 'custom-ca.crt', readOnly: true });
    const volume = deployment(objects).spec.template.spec.volumes.find((v: { name: string }) => v.name === 'custom-cabundle');
    expect(volume.configMap).toEqual({ name: 'corp-ca', items: [{ key: 'ca.crt', path: 'custom-ca.crt' }] });
  });

  it('mounts git credentials and ssh keys from release-scoped objects', async () => {
    const objects = await helm.template({ valuesFiles: ciValuesFiles.filter((f) => f.endsWith('git-creds-values.yaml')) });
    const secret = one(objects, 'Secret', 'git-creds-rel', agentNamespace(objects));
    expect(Buffer.from(secret.data['.git-credentials'], 'base64').toString()).toContain('https://launch-bot:');
    expect(Buffer.from(secret.data['.gitconfig'], 'base64').toString()).toContain('helper = store');
    const mounts = container(objects).volumeMounts.map((m: { mountPath: string }) => m.mountPath);
    expect(mounts).toEqual(
      expect.arrayContaining([
        '/home/launch_agent/.gitconfig',
        '/home/launch_agent/.git-credentials',
        '/home/launch_agent/.ssh',
        '/home/launch_agent/.ssh/id_repo0',
        '/home/launch_agent/.ssh/id_repo1',
        '/home/launch_agent/.ssh/config',
      ]),
    );
    const ssh = one(objects, 'ConfigMap', 'ssh-config-rel');
    expect(ssh.data.config).toContain('Host github.com');
    expect(ssh.data.config).toContain('IdentityFile /home/launch_agent/.ssh/id_repo1');
    const volumes = deployment(objects).spec.template.spec.volumes;
    expect(volumes.find((v: { name: string }) => v.name === 'git-ssh-key-secret-1').secret).toMatchObject({
      secretName: 'gitlab-deploy-key',
      defaultMode: 0o440,
    });
  });

  it('mounts the kaniko PVC without a root init container and passes the kaniko variables', async () => {
    const objects = await helm.template({ valuesFiles: ciValuesFiles.filter((f) => f.endsWith('kaniko-pvc-values.yaml')) });
    const env = envOf(objects);
    expect(env).toMatchObject({
      WANDB_LAUNCH_KANIKO_PVC_NAME: 'launch-build-contexts',
      WANDB_LAUNCH_KANIKO_PVC_MOUNT_PATH: '/home/launch_agent/kaniko',
      WANDB_LAUNCH_KANIKO_AUTH_SECRET: 'registry-auth',
    });
    const pod = deployment(objects).spec.template.spec;
    expect(pod.initContainers).toBeUndefined();
    expect(pod.volumes.find((v: { name: string }) => v.name === 'kaniko-pvc').persistentVolumeClaim).toEqual({ claimName: 'launch-build-contexts' });
    const azure = one(objects, 'Secret', 'azure-storage-access-key-rel', agentNamespace(objects));
    expect(azure.type).toBe('kubernetes.io/basic-auth');
  });
});

describe('checksum annotations on the pod template', () => {
  const annotations = async (setJson: Record<string, unknown>) => deployment(await helm.template({ setJson })).spec.template.metadata.annotations;

  it('change when the API key changes, so a rotated key rolls the pod', async () => {
    const a = await annotations({ 'agent.apiKey': KEY });
    const b = await annotations({ 'agent.apiKey': KEY.replace('a1', 'ff') });
    expect(a['checksum/secret']).toMatch(/^[0-9a-f]{64}$/);
    expect(b['checksum/secret']).not.toBe(a['checksum/secret']);
    expect(b['checksum/config']).toBe(a['checksum/config']);
  });

  it('change when the launch config, an env secret or git credentials change', async () => {
    const base = await annotations({ 'agent.apiKey': KEY });
    expect((await annotations({ 'agent.apiKey': KEY, launchConfig: 'queues: [other]\n' }))['checksum/config']).not.toBe(base['checksum/config']);
    expect((await annotations({ 'agent.apiKey': KEY, baseUrl: 'https://w.example.com' }))['checksum/config']).not.toBe(base['checksum/config']);
    expect((await annotations({ 'agent.apiKey': KEY, additionalSecretEnvVars: { T: 'x' } }))['checksum/secret']).not.toBe(base['checksum/secret']);
    expect((await annotations({ 'agent.apiKey': KEY, gitCreds: 'https://u:p@h' }))['checksum/secret']).not.toBe(base['checksum/secret']);
  });

  it('are on the pod template only, next to the user’s pod annotations', async () => {
    const objects = await helm.template({ setJson: { 'agent.podAnnotations': { 'example.com/team': 'ml' } } });
    const d = deployment(objects);
    expect(d.metadata.annotations).toBeUndefined();
    expect(Object.keys(d.spec.template.metadata.annotations).sort()).toEqual(['checksum/config', 'checksum/secret', 'example.com/team']);
  });
});

describe('RBAC', () => {
  const rulesOf = (role: KubeObject) =>
    role.rules.map(
      (r: { apiGroups: string[]; resources: string[]; verbs: string[] }) =>
        `${r.apiGroups.join(',') || 'core'}:${r.resources.join(',')}:${[...r.verbs].sort().join(',')}`,
    );

  it('grants one Role and RoleBinding per target namespace, bound to the agent’s service account', async () => {
    const objects = await helm.template({ valuesFiles: ciValuesFiles.filter((f) => f.endsWith('target-namespaces-values.yaml')) });
    const expected = ['launch-system', 'team-a', 'team-b', 'team-c'];
    expect(
      find(objects, 'Role')
        .map((r) => r.metadata.namespace)
        .sort(),
    ).toEqual(expected);
    expect(
      find(objects, 'RoleBinding')
        .map((r) => r.metadata.namespace)
        .sort(),
    ).toEqual(expected);
    for (const rb of find(objects, 'RoleBinding')) {
      expect(rb.subjects).toEqual([{ kind: 'ServiceAccount', name: 'wandb-launch-serviceaccount-rel', namespace: 'launch-system' }]);
      expect(rb.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'launch-agent-rel' });
      one(objects, 'Role', rb.roleRef.name, rb.metadata.namespace);
    }
    expect(
      find(objects, 'Secret', 'wandb-api-key-rel')
        .map((s) => s.metadata.namespace)
        .sort(),
    ).toEqual(expected);
    expect(objects.some((o) => o.kind.startsWith('Cluster'))).toBe(false);
    // Kubeflow and JobSet when asked, Volcano not.
    const rules = rulesOf(one(objects, 'Role', 'launch-agent-rel', 'team-b'));
    expect(rules).toContain('kubeflow.org:pytorchjobs,tfjobs,mpijobs,xgboostjobs,paddlejobs,jaxjobs:create,delete,get,list,patch,watch');
    expect(rules).toContain('jobset.x-k8s.io:jobsets:create,delete,get,list,patch,watch');
    expect(rules.some((r: string) => r.startsWith('batch.volcano.sh'))).toBe(false);
  });

  it('grants exactly the verbs the Kubernetes runner calls, and Volcano when volcano is on', async () => {
    const objects = await helm.template({ valuesFiles: ciValuesFiles.filter((f) => f.endsWith('volcano-values.yaml')) });
    const role = one(objects, 'Role', 'launch-agent-rel', 'default');
    expect(rulesOf(role)).toEqual([
      'batch:jobs:create,delete,get,list,patch,watch',
      'core:pods:list,watch',
      'core:pods/log:get',
      'core:secrets:create,delete,get,update',
      'core:services,configmaps,pods,persistentvolumeclaims:create,delete',
      'batch.volcano.sh:jobs:create,delete,get,list,patch,watch',
    ]);
    for (const r of role.rules) expect(r.verbs).not.toContain('*');

    const minimal = await helm.template({ setJson: { volcano: false, 'rbac.additionalServices': false } });
    expect(rulesOf(one(minimal, 'Role', 'launch-agent-rel', 'wandb'))).toEqual([
      'batch:jobs:create,delete,get,list,patch,watch',
      'core:pods:list,watch',
      'core:pods/log:get',
      'core:secrets:create,delete,get,update',
    ]);
  });

  it('grants kaniko builds their ConfigMap in the agent’s namespace, also without additional services', async () => {
    const kaniko = ciValuesFiles.filter((f) => f.endsWith('kaniko-pvc-values.yaml'));
    expect(kaniko).toHaveLength(1);
    const objects = await helm.template({ valuesFiles: kaniko, setJson: { 'rbac.additionalServices': false, additionalTargetNamespaces: ['ml'] } });
    const ns = one(objects, 'Deployment').metadata.namespace!;
    expect(rulesOf(one(objects, 'Role', 'launch-agent-rel', ns))).toContain('core:configmaps:create,delete');
    expect(rulesOf(one(objects, 'Role', 'launch-agent-rel', 'ml')).some((r: string) => r.startsWith('core:configmaps'))).toBe(false);
    // Another builder: no ConfigMap access at all.
    const noop = await helm.template({ setJson: { 'rbac.additionalServices': false, launchConfig: 'queues: [default]\nbuilder:\n  type: noop\n' } });
    for (const role of find(noop, 'Role')) expect(rulesOf(role).some((r: string) => r.includes('configmaps'))).toBe(false);
  });

  it('appends rbac.extraRules to every Role', async () => {
    const extra = { apiGroups: ['apps'], resources: ['deployments'], verbs: ['create', 'delete'] };
    const objects = await helm.template({ setJson: { 'rbac.extraRules': [extra] } });
    for (const role of find(objects, 'Role')) expect(role.rules.at(-1)).toEqual(extra);
  });

  it('two releases in one namespace share no object name', async () => {
    const values = {
      'agent.apiKey': KEY,
      gitCreds: 'https://u:p@h',
      azureStorageAccessKey: 'k',
      additionalSecretEnvVars: { T: 'x' },
      'metrics.enabled': true,
      'metrics.serviceMonitor.enabled': true,
    };
    const a = await helm.template({ release: 'alpha', setJson: values });
    const b = await helm.template({ release: 'beta', setJson: values });
    const names = (objs: KubeObject[]) => new Set(objs.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`));
    const shared = [...names(a)].filter((n) => names(b).has(n));
    expect(shared).toEqual([]);
  });
});

describe('metrics', () => {
  it('renders a Service on the health port and a ServiceMonitor when asked', async () => {
    const objects = await helm.template({ valuesFiles: ciValuesFiles.filter((f) => f.endsWith('volcano-values.yaml')) });
    const svc = one(objects, 'Service', 'launch-agent-rel-metrics');
    expect(svc.spec.selector).toEqual({ app: 'launch-agent-rel' });
    expect(svc.spec.ports).toEqual([{ name: 'metrics', port: 8080, targetPort: 'health', protocol: 'TCP' }]);
    const sm = one(objects, 'ServiceMonitor');
    expect(sm.metadata.labels!.release).toBe('kube-prometheus-stack');
    expect(sm.spec.endpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics' });
    // Its selector picks the metrics Service.
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) expect(svc.metadata.labels![k]).toBe(v);
    expect(find(await helm.template(), 'Service')).toEqual([]);
  });

  it('refuses a ServiceMonitor without the metrics Service, and metrics without the health port', async () => {
    const r = await helm.run(['template', 'rel', helmChart(), '--set', 'metrics.serviceMonitor.enabled=true']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('metrics.serviceMonitor.enabled');
    const s = await helm.run(['template', 'rel', helmChart(), '--set', 'metrics.enabled=true', '--set', 'health.enabled=false']);
    expect(s.code).not.toBe(0);
    expect(s.stderr).toContain('set health.enabled=true');
  });
});

describe('values.schema.json', () => {
  it.each([
    ['agent.startTimeout', ['--set', 'agent.startTimeout=soon'], 'agent.startTimeout: Invalid type. Expected: integer, given: string'],
    ['volcano', ['--set-string', 'volcano=yes'], 'volcano: Invalid type. Expected: boolean, given: string'],
    [
      'additionalTargetNamespaces',
      ['--set', 'additionalTargetNamespaces=ml'],
      'additionalTargetNamespaces: Invalid type. Expected: [array,null], given: string',
    ],
    ['agent.resources', ['--set-json', 'agent.resources=["1cpu"]'], 'agent.resources: Invalid type. Expected: [object,null], given: array'],
    ['agent.imagePullPolicy', ['--set', 'agent.imagePullPolicy=Sometimes'], 'agent.imagePullPolicy'],
    ['health.port', ['--set', 'health.port=0'], 'health.port'],
    ['launchConfig', ['--set-json', 'launchConfig={"queues":["a"]}'], 'launchConfig: Invalid type. Expected: string, given: object'],
    ['agent.useExternalWandbSecret', ['--set-string', 'agent.useExternalWandbSecret=yes'], 'agent.useExternalWandbSecret: Must validate at least one schema'],
    ['a misspelt key', ['--set', 'agent.apikey=x'], 'Additional property apikey is not allowed'],
    ['additionalTargetNamespaces[0]', ['--set', 'additionalTargetNamespaces[0]=Not_A_Namespace'], 'additionalTargetNamespaces.0: Does not match pattern'],
  ])('refuses a wrong %s with its path, in helm template and helm lint', async (_what, args, message) => {
    const t = await helm.run(['template', 'rel', helmChart(), ...args]);
    expect(t.code).not.toBe(0);
    expect(t.stderr).toContain(message);
    const l = await helm.run(['lint', '--strict', helmChart(), ...args]);
    expect(l.code).not.toBe(0);
    expect(l.stdout + l.stderr).toContain(message);
  });
});
