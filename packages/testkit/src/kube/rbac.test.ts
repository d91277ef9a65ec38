import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, CoreApi, CoreV1Api, CustomObjectsApi, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { startKubeTestServer, type KubeTestServer } from './server.js';
import { clientsFor } from './test-helpers.js';

const servers: KubeTestServer[] = [];
const dirs: string[] = [];
const savedEnv = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  for (const [name, value] of [
    ['KUBERNETES_SERVICE_HOST', savedEnv.host],
    ['KUBERNETES_SERVICE_PORT', savedEnv.port],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

async function start(options: Parameters<typeof startKubeTestServer>[0]): Promise<KubeTestServer> {
  const s = await startKubeTestServer(options);
  servers.push(s);
  return s;
}

/**
 * A client configured as in a pod: client-node's own in-cluster loader (`loadFromCluster`), reading the token, ca.crt
 * and namespace files under `<prefix>/var/run/secrets/kubernetes.io/serviceaccount` and the service env variables.
 */
function inClusterConfig(server: KubeTestServer, token: string, namespace: string): KubeConfig {
  const prefix = mkdtempSync(join(tmpdir(), 'kube-in-cluster-'));
  dirs.push(prefix);
  const sa = join(prefix, 'var/run/secrets/kubernetes.io/serviceaccount');
  mkdirSync(sa, { recursive: true });
  writeFileSync(join(sa, 'token'), token);
  writeFileSync(join(sa, 'ca.crt'), server.caCert ?? '');
  writeFileSync(join(sa, 'namespace'), namespace);
  const url = new URL(server.url);
  process.env.KUBERNETES_SERVICE_HOST = url.hostname;
  process.env.KUBERNETES_SERVICE_PORT = url.port;
  const kc = new KubeConfig();
  kc.loadFromCluster(prefix);
  return kc;
}

async function failure(promise: Promise<unknown>): Promise<{ code: number; body: Record<string, any> }> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ApiException);
    const e = error as ApiException<unknown>;
    return { code: e.code, body: (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as Record<string, any> };
  }
  throw new Error('expected the call to fail');
}

async function serviceAccount(server: KubeTestServer, namespace: string, name: string): Promise<string> {
  await clientsFor(server).core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  return server.serviceAccountToken(namespace, name);
}

/** RBAC objects made by the cluster admin (the kubeconfig's token). */
function adminRbac(server: KubeTestServer): RbacAuthorizationV1Api {
  return clientsFor(server).kc.makeApiClient(RbacAuthorizationV1Api);
}

describe('kube test server: TLS and in-cluster clients', () => {
  it('serves HTTPS with a certificate client-node verifies, from the kubeconfig and from in-cluster files', async () => {
    const server = await start({ tls: true, namespaces: ['default', 'ml'] });
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(server.caCert).toContain('BEGIN CERTIFICATE');
    expect(server.kubeconfigYaml).not.toContain('insecure-skip-tls-verify');
    const pods = await clientsFor(server).core.listNamespacedPod({ namespace: 'ml' });
    expect(pods.items).toEqual([]);

    const token = await serviceAccount(server, 'ml', 'agent');
    const inCluster = inClusterConfig(server, token, 'ml').makeApiClient(CoreV1Api);
    expect((await inCluster.listNamespacedPod({ namespace: 'ml' })).items).toEqual([]);
    expect(server.requests.at(-1)).toMatchObject({ path: '/api/v1/namespaces/ml/pods', status: 200, user: 'system:serviceaccount:ml:agent' });

    // A client that does not trust the certificate is refused by TLS, not answered.
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser({ name: 'c', server: server.url, skipTLSVerify: false }, { name: 'u', token: server.token });
    await expect(kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'ml' })).rejects.toThrow(/certificate/i);
  });

  it('issues tokens only for ServiceAccounts that exist; an unknown token is a 401', async () => {
    const server = await start({});
    expect(() => server.serviceAccountToken('default', 'nobody')).toThrow('no ServiceAccount default/nobody');
    const res = await fetch(`${server.url}/api/v1/namespaces/default/pods`, { headers: { authorization: 'Bearer made-up' } });
    expect(res.status).toBe(401);
  });

  it('allows a service account everything without authorization: RBAC (the default)', async () => {
    const server = await start({ namespaces: ['default', 'ml'] });
    const token = await serviceAccount(server, 'ml', 'agent');
    const res = await fetch(`${server.url}/api/v1/secrets`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
  });
});

describe('kube test server: RBAC authorization', () => {
  it('grants a service account what its RoleBindings and ClusterRoleBindings grant, and refuses the rest with 403', async () => {
    const server = await start({ tls: true, authorization: 'RBAC', namespaces: ['default', 'ml', 'other'] });
    const token = await serviceAccount(server, 'default', 'agent');
    const user = 'system:serviceaccount:default:agent';
    const kc = inClusterConfig(server, token, 'default');
    const client = kc.makeApiClient(CoreV1Api);
    const rbac = adminRbac(server);

    // Nothing bound yet: a real Forbidden Status, naming user, verb, resource and namespace.
    const denied = await failure(client.listNamespacedPod({ namespace: 'ml' }));
    expect(denied.code).toBe(403);
    expect(denied.body).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'Forbidden',
      code: 403,
      message: `pods is forbidden: User "${user}" cannot list resource "pods" in API group "" in the namespace "ml"`,
      details: { kind: 'pods', group: '' },
    });
    // Authorization comes before routing: a group that is not served is refused, not a 404.
    const custom = kc.makeApiClient(CustomObjectsApi);
    const unserved = await failure(custom.listNamespacedCustomObject({ group: 'example.com', version: 'v1', namespace: 'ml', plural: 'widgets' }));
    expect(unserved.code).toBe(403);
    expect(unserved.body.message).toBe(
      `widgets.example.com is forbidden: User "${user}" cannot list resource "widgets" in API group "example.com" in the namespace "ml"`,
    );
    // Discovery is open to every authenticated user.
    expect((await kc.makeApiClient(CoreApi).getAPIVersions()).versions).toEqual(['v1']);

    // A Role in ml: list and watch pods, get one named secret, and pods/log.
    await rbac.createNamespacedRole({
      namespace: 'ml',
      body: {
        metadata: { name: 'reader' },
        rules: [
          { apiGroups: [''], resources: ['pods', 'pods/log'], verbs: ['list', 'watch', 'get'] },
          { apiGroups: [''], resources: ['secrets'], resourceNames: ['allowed'], verbs: ['get'] },
        ],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: 'ml',
      body: {
        metadata: { name: 'reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'agent', namespace: 'default' }],
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' },
      },
    });
    expect((await client.listNamespacedPod({ namespace: 'ml' })).items).toEqual([]);
    // Only there, only those verbs, only that secret.
    expect((await failure(client.listNamespacedPod({ namespace: 'other' }))).code).toBe(403);
    const del = await failure(client.deleteCollectionNamespacedPod({ namespace: 'ml' }));
    expect(del.body.message).toBe(`pods is forbidden: User "${user}" cannot deletecollection resource "pods" in API group "" in the namespace "ml"`);
    expect((await failure(client.readNamespacedSecret({ namespace: 'ml', name: 'allowed' }))).code).toBe(404);
    const other = await failure(client.readNamespacedSecret({ namespace: 'ml', name: 'other' }));
    expect(other.body.message).toBe(`secrets "other" is forbidden: User "${user}" cannot get resource "secrets" in API group "" in the namespace "ml"`);
    expect((await failure(client.listNamespacedSecret({ namespace: 'ml' }))).code).toBe(403);
    // A watch is its own verb.
    const watch = await failure(client.listNamespacedSecret({ namespace: 'ml', watch: true }));
    expect(watch.body.message).toBe(`secrets is forbidden: User "${user}" cannot watch resource "secrets" in API group "" in the namespace "ml"`);

    // A ClusterRoleBinding to a group the token's user is in: cluster-wide namespaces list.
    await rbac.createClusterRole({ body: { metadata: { name: 'ns-reader' }, rules: [{ apiGroups: [''], resources: ['namespaces'], verbs: ['list'] }] } });
    expect((await failure(client.listNamespace())).body.message).toBe(
      `namespaces is forbidden: User "${user}" cannot list resource "namespaces" in API group "" at the cluster scope`,
    );
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: 'ns-reader' },
        subjects: [{ kind: 'Group', name: 'system:serviceaccounts:default', apiGroup: 'rbac.authorization.k8s.io' }],
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'ns-reader' },
      },
    });
    expect((await client.listNamespace()).items.map((n) => n.metadata?.name).sort()).toEqual(['default', 'ml', 'other']);

    // The kubeconfig's own token is a cluster admin under RBAC too.
    expect((await clientsFor(server).core.listSecretForAllNamespaces()).items).toEqual([]);
  });

  it('validates RBAC objects against their schema', async () => {
    const server = await start({ authorization: 'RBAC' });
    const res = await fetch(`${server.url}/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'broken' },
        subjects: [{ kind: 'ServiceAccount', name: 'agent' }],
      }),
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { message: string }).message).toContain('roleRef');
  });
});
