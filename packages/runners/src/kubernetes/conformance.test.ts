import { describeRunner, startKubeTestServer, type KubeTestServer } from '@launch/testkit';
import { createKubernetesRunner } from './runner.js';

let server: KubeTestServer;

describeRunner('kubernetes (test server)', async () => {
  server = await startKubeTestServer({ kubelet: { stepDelayMs: 5 }, timeScale: 0.01 });
  const runner = createKubernetesRunner({ kubeconfigPath: server.kubeconfigPath, watchBackoffMs: { initial: 20, max: 200 } });
  const sh = (script: string) => ({ entryPoint: ['sh', '-c'], args: [script] });
  return {
    runner,
    request: (overrides = {}) => ({
      runId: 'r',
      itemId: 'i',
      queue: 'q',
      agentName: 'conformance',
      spec: { entity: 'e', project: 'p', resource: 'kubernetes' },
      image: 'busybox:1.36',
      entryPoint: [],
      args: [],
      env: { WANDB_API_KEY: 'conformance-key-123456' },
      resourceArgs: {},
      ...overrides,
    }),
    commands: {
      succeed: () => sh('exit 0'),
      fail: (code) => sh(`exit ${code}`),
      sleep: (s) => sh(`sleep ${s}`),
      printEnv: (name) => sh(`echo "$${name}"`),
      echo: (text) => sh(`echo "${text}"`),
    },
    invalidRequests: [],
    async cleanup() {
      await runner.close();
      await server.close();
    },
  };
});
