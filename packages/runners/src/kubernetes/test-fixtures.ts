import type { RunRequest, RunStatus, SubmittedRun } from '@launch/core';

/** A RunRequest as the agent builds it for a kubernetes job (tests only). */
export function kubeRequest(overrides: Partial<RunRequest> = {}): RunRequest {
  return {
    runId: 'abc123',
    itemId: 'UnVuUXVldWVJdGVtOjE=',
    queue: 'gpu',
    agentName: 'agent-1',
    spec: { entity: 'My_Team', project: 'Fine Tune', resource: 'kubernetes', docker: { docker_image: 'ghcr.io/acme/train:1' } },
    image: 'ghcr.io/acme/train:1',
    entryPoint: [],
    args: [],
    env: { WANDB_API_KEY: 'secret-key-1234567890', WANDB_RUN_ID: 'abc123', WANDB_PROJECT: 'Fine Tune' },
    resourceArgs: {},
    ...overrides,
  };
}

/** The seed chart's CoreWeave queue config (resource_args.kubernetes), image macro already filled. */
export const COREWEAVE_ARGS = {
  spec: {
    template: {
      spec: {
        containers: [
          {
            image: 'ghcr.io/acme/train:1',
            name: 'finetuner-llm',
            resources: {
              requests: { memory: '128Gi', cpu: 8, 'nvidia.com/gpu': 1 },
              limits: { memory: '128Gi', cpu: 8, 'nvidia.com/gpu': 1 },
            },
            volumeMounts: [{ name: 'dshm', mountPath: '/dev/shm' }],
          },
        ],
        volumes: [{ emptyDir: { sizeLimit: '64Gi' }, name: 'dshm' }],
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                {
                  matchExpressions: [
                    { key: 'gpu.nvidia.com/class', operator: 'In', values: ['A40'] },
                    { key: 'topology.kubernetes.io/region', operator: 'In', values: ['LAS1'] },
                  ],
                },
              ],
            },
          },
        },
        restartPolicy: 'Never',
      },
    },
    backoffLimit: 1,
  },
};

/** The first status of `run` that `pred` accepts (the current one or a later one), or a timeout error. */
export function until(run: SubmittedRun, pred: (s: RunStatus) => boolean, timeoutMs = 10_000): Promise<RunStatus> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out waiting for a status')), timeoutMs);
    const check = (s: RunStatus) => {
      if (pred(s)) {
        clearTimeout(t);
        off();
        resolve(s);
      }
    };
    const off = run.onStatus(check);
    void run.status().then(check);
  });
}
