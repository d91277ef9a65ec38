import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The kubeconfig a client loads to reach the test server: cluster, user and context all named `test`. With `caPem`
 * (a TLS server) the server's certificate is the CA and is verified; without it, plain http.
 */
export function kubeconfigYaml(url: string, token: string, namespace = 'default', caPem?: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: test',
    '  cluster:',
    `    server: ${url}`,
    caPem
      ? `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`
      : // client-node 1.x refuses plain http unless TLS verification is explicitly skipped.
        '    insecure-skip-tls-verify: true',
    'users:',
    '- name: test',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: test',
    '  context:',
    '    cluster: test',
    '    user: test',
    `    namespace: ${namespace}`,
    'current-context: test',
    'preferences: {}',
    '',
  ].join('\n');
}

export async function writeKubeconfig(yaml: string): Promise<{ path: string; dispose(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'kube-test-server-'));
  const path = join(dir, 'kubeconfig.yaml');
  await writeFile(path, yaml, { mode: 0o600 });
  return { path, dispose: () => rm(dir, { recursive: true, force: true }) };
}
