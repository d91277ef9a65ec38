import { BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterEach } from 'vitest';
import { startKubeTestServer, type KubeTestServer, type KubeTestServerOptions } from './server.js';

/** Clients of the real `@kubernetes/client-node`, configured from the server's kubeconfig file. */
export function clientsFor(server: KubeTestServer) {
  const kc = new KubeConfig();
  kc.loadFromFile(server.kubeconfigPath);
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
  };
}

/** Polls until `check` returns a value (not undefined/false), or fails after the deadline. */
export async function eventually<T>(check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A minimal valid batch/v1 Job manifest. */
export function jobManifest(name: string, command: string[] = ['sh', '-c', 'echo hello'], extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, labels: { app: 'launch' } },
    spec: {
      backoffLimit: 0,
      template: {
        metadata: { labels: { app: 'launch' } },
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox:1.36', command }] },
      },
      ...extra,
    },
  };
}

/** Starts a fresh server per test (fast kubelet steps) and closes it after the test. */
export function useKubeServer() {
  let current: KubeTestServer | undefined;
  afterEach(async () => {
    await current?.close();
    current = undefined;
  });
  return {
    async setup(options: KubeTestServerOptions = {}) {
      await current?.close();
      current = await startKubeTestServer({ kubelet: { stepDelayMs: 5 }, ...options });
      return { server: current, ...clientsFor(current) };
    },
  };
}
