import { z } from 'zod';
import type { Logger, Registry } from '@launch/core';
import { loggerOption, parseRunnerOptions } from '../options.js';
import { codeInitImageSchema, codePvcSchema } from './code-mount.js';

const isRegistry = (value: unknown): value is Registry =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as Registry).credentials === 'function' &&
  typeof (value as Registry).needsPullSecret === 'boolean';

const apiVersion = z.string().regex(/^[a-z0-9.-]+\/[a-z0-9]+$/, 'an apiVersion such as "kubeflow.org/v1"');

export const kubernetesRunnerOptionsSchema = z
  .object({
    /** Agent name used in the `wandb.ai/agent` label; defaults to the RunRequest's `agentName`. */
    agentName: z.string().min(1).optional(),
    /** Kube config file; default `$KUBECONFIG`, `~/.kube/config`, then in-cluster. `resource_args.configFile` wins per run. */
    kubeconfigPath: z.string().min(1).optional(),
    /** Kube context; `resource_args.context` wins per run. */
    context: z.string().min(1).optional(),
    /** W&B's `backend_config.runner.namespace`: used when the resource args name none. */
    namespace: z.string().min(1).optional(),
    /** W&B's `secure_mode`: refuse more fields (pod-level host namespaces, init containers, commands). */
    secureMode: z.boolean().default(false),
    /** Helm release whose pre-made `wandb-api-key-<release>` secret is used; default `$WANDB_RELEASE_NAME`. */
    releaseName: z.string().min(1).optional(),
    /** Registry images are pulled from; when it `needsPullSecret`, a `regcred-<run id>` secret is made per run. */
    registry: z.custom<Registry>(isRegistry, 'a Registry (needsPullSecret, credentials())').optional(),
    /** Lines of a failed pod's log kept in `RunStatus.logTail`. Default 100. */
    logTailLines: z.number().int().min(1).max(10_000).default(100),
    /** Stream each running pod's log to `onLog` listeners (one follow request per run). Default true. */
    streamLogs: z.boolean().default(true),
    /** Custom kinds (besides Jobs and Volcano Jobs) whose objects `adopt()` looks for. */
    customKinds: z.array(z.object({ apiVersion, kind: z.string().min(1) }).strict()).default([]),
    /**
     * Namespaces searched for runs to adopt when the service account may not list cluster-wide (besides the runner's
     * own namespace): the chart's `additionalTargetNamespaces`.
     */
    adoptNamespaces: z.array(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a namespace name')).default([]),
    /** Also adopt Volcano Jobs (the seed chart installs Volcano by default). Default true. */
    volcano: z.boolean().default(true),
    /** First and maximum delay between watch reconnects. */
    watchBackoffMs: z
      .object({ initial: z.number().int().min(1).default(250), max: z.number().int().min(1).default(30_000) })
      .strict()
      .default({ initial: 250, max: 30_000 }),
    /** Server-side timeout of each watch request, after which it is resumed from the last resourceVersion. */
    watchTimeoutSeconds: z.number().int().min(1).default(300),
    /**
     * How long the watches of a namespace (and their caches) stay open after the last run of this runner there ended,
     * so back-to-back runs share them; then they are closed until a run uses the namespace again. Default 30 000 ms.
     */
    watchIdleMs: z.number().int().min(0).default(30_000),
    /**
     * W&B's `WANDB_LAUNCH_CODE_PVC_NAME` / `WANDB_LAUNCH_CODE_PVC_MOUNT_PATH`: a W&B job's code run on a base image (no
     * builder) is copied onto this PersistentVolumeClaim, mounted at `mountPath` on the agent's machine, and the run's
     * pod mounts the run's directory of it. Without it such runs fail with `run.cannot_mount_code`.
     */
    codePvc: codePvcSchema.optional(),
    /**
     * W&B's other mode, used when `codePvc` is not set: the image of the init container `wandb-source-code-init`,
     * which must hold the `launch-agent` binary (this project's agent image). It runs `launch-agent fetch-code` to
     * fetch the W&B job's code into an `emptyDir` mounted where the request asks; the run's pod mounts it there.
     * Without either option, runs with code fail with `run.cannot_mount_code`.
     */
    codeInitImage: codeInitImageSchema.optional(),
    /** Extra plain environment of the code init container (proxies, `LAUNCH_ALLOW_FILE_GIT_REMOTES`); never the API key. */
    codeInitEnv: z
      .record(
        z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
          .refine((n) => n !== 'WANDB_API_KEY', "a name other than WANDB_API_KEY (the key comes from the run's secret)"),
        z.string().refine((v) => !v.includes('\0'), 'a value without NUL'),
      )
      .default({}),
    logger: loggerOption,
  })
  .strict();

export type KubernetesRunnerOptions = z.input<typeof kubernetesRunnerOptionsSchema>;
export type ResolvedKubernetesRunnerOptions = z.output<typeof kubernetesRunnerOptionsSchema> & { logger: Logger };

/** Validates the factory options; throws a LaunchValidationError naming each bad field. */
export function parseKubernetesRunnerOptions(input: unknown): ResolvedKubernetesRunnerOptions {
  const parsed = parseRunnerOptions(kubernetesRunnerOptionsSchema, input, 'kubernetes runner options');
  return { ...parsed, releaseName: parsed.releaseName ?? (process.env.WANDB_RELEASE_NAME || undefined) };
}
