import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { silentLogger, type ContextStore, type Logger } from '@launch/core';
import { commonBuilderOptions, parseBuilderOptions, registryOption } from '../common-options.js';
import { KANIKO_DEFAULTS } from './job.js';

const isContextStore = (value: unknown): value is ContextStore =>
  typeof value === 'object' && value !== null && typeof (value as ContextStore).upload === 'function' && typeof (value as ContextStore).verify === 'function';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The in-cluster service account's namespace file, W&B's first choice of namespace. */
export const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export const kanikoBuilderOptionsSchema = z
  .object({
    /** Kube config file; default `$KUBECONFIG`, `~/.kube/config`, else the in-cluster service account. */
    kubeconfigPath: z.string().min(1).optional(),
    /** Kube config context to use. */
    context: z.string().min(1).optional(),
    /** Namespace of build Jobs. Default: the in-cluster service account's namespace, else `wandb` (W&B). */
    namespace: z.string().max(63).regex(DNS_LABEL, 'a namespace name (lower-case letters, digits, "-")').optional(),
    /** W&B `builder.build-job-name`: Jobs are `<buildJobName>-<run id>`. */
    buildJobName: z
      .string()
      .max(50)
      .regex(DNS_LABEL, 'a DNS label (lower-case letters, digits, "-"), at most 50 characters')
      .default(KANIKO_DEFAULTS.buildJobName),
    /** W&B `builder.kaniko-config`: a partial Job deep-merged with ours (see buildKanikoJob). */
    kanikoConfig: z.record(z.string(), z.unknown()).default({}),
    /** The kaniko executor image (W&B's is `gcr.io/kaniko-project/executor:v1.11.0`). */
    kanikoImage: z.string().min(1).regex(/^\S+$/, 'an image reference without spaces').default(KANIKO_DEFAULTS.image),
    /** W&B `builder.destination`: the repository to push to (overrides the registry's uri). */
    destination: commonBuilderOptions.destination,
    /** The registry to check and push to (a request's `registry` wins). */
    registry: registryOption(false),
    /** W&B `builder.build-context-store`, as a ContextStore (a request's `contextStore` wins). */
    contextStore: z.custom<ContextStore>(isContextStore, 'a ContextStore (verify(), upload())').optional(),
    /** W&B `WANDB_LAUNCH_KANIKO_PVC_NAME`: a PVC holding contexts, mounted at `/context` in the build pod. */
    pvcName: z.string().max(253).regex(DNS_SUBDOMAIN, 'a PVC name').optional(),
    /** W&B `WANDB_LAUNCH_KANIKO_PVC_MOUNT_PATH`: where the agent has that PVC mounted. Default `/kaniko`. */
    pvcMountPath: z.string().startsWith('/', 'an absolute path').default('/kaniko'),
    /** W&B `builder.secret-name` / `secret-key`: a Secret with cloud credentials for kaniko (both or neither). */
    secretName: z.string().max(253).regex(DNS_SUBDOMAIN, 'a Secret name').optional(),
    secretKey: z
      .string()
      .min(1)
      .regex(/^[-._a-zA-Z0-9]+$/, 'a Secret key')
      .optional(),
    /** W&B `WANDB_LAUNCH_KANIKO_AUTH_SECRET`: a `kubernetes.io/dockerconfigjson` Secret mounted as kaniko's docker config; the image-exists check is then skipped. */
    dockerConfigSecret: z.string().max(253).regex(DNS_SUBDOMAIN, 'a Secret name').optional(),
    /**
     * The Secret (key `password`, in the build Jobs' namespace) whose value kaniko reads as `AZURE_STORAGE_ACCESS_KEY`
     * for an Azure Blob context. Default W&B's `azure-storage-access-key`; the Helm chart names its release's secret.
     */
    azureStorageKeySecret: z.string().max(253).regex(DNS_SUBDOMAIN, 'a Secret name').default('azure-storage-access-key'),
    /** W&B `WANDB_LAUNCH_SERVICE_ACCOUNT_NAME`: the build pod's service account. Default `default`. */
    serviceAccountName: z.string().max(253).regex(DNS_SUBDOMAIN, 'a ServiceAccount name').default(KANIKO_DEFAULTS.serviceAccountName),
    /** AWS region for ECR pushes (`AWS_REGION` in the pod); default the one in an ECR repository's host. */
    awsRegion: z
      .string()
      .regex(/^[a-z0-9-]+$/, 'an AWS region')
      .optional(),
    /** The build pod's `activeDeadlineSeconds` (W&B 1800); the builder waits at most three times this. */
    buildTimeoutSeconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .default(KANIKO_DEFAULTS.buildTimeoutSeconds),
    buildArgs: commonBuilderOptions.buildArgs,
    pythonVersion: commonBuilderOptions.pythonVersion,
    dockerUser: commonBuilderOptions.dockerUser,
    /** gzip level of the uploaded context (0–9). Default 6. */
    gzipLevel: z.number().int().min(0).max(9).default(6),
    maxContextEntries: commonBuilderOptions.maxContextEntries,
    tailLines: commonBuilderOptions.tailLines,
    logger: commonBuilderOptions.logger,
  })
  .strict()
  .superRefine((value, ctx) => {
    if (!!value.secretName !== !!value.secretKey) {
      ctx.addIssue({
        code: 'custom',
        path: [value.secretName ? 'secretKey' : 'secretName'],
        message: 'give secretName and secretKey together, or neither (W&B: secret-name / secret-key)',
      });
    }
    if (!value.contextStore && !value.pvcName) {
      ctx.addIssue({
        code: 'custom',
        path: ['contextStore'],
        message:
          'the kaniko builder needs a build context store (builder.build-context-store: s3://, gs:// or an Azure blob container) or a PVC (WANDB_LAUNCH_KANIKO_PVC_NAME)',
      });
    }
  });

export type KanikoBuilderOptions = z.input<typeof kanikoBuilderOptionsSchema>;
export type ResolvedKanikoBuilderOptions = z.output<typeof kanikoBuilderOptionsSchema> & { logger: Logger; namespace: string };

/** Validates the factory options; throws a LaunchValidationError (code `builder.invalid_options`) naming each bad field. */
export function parseKanikoBuilderOptions(input: unknown, namespaceFile = SERVICE_ACCOUNT_NAMESPACE_FILE): ResolvedKanikoBuilderOptions {
  const data = parseBuilderOptions(kanikoBuilderOptionsSchema, Object.keys(kanikoBuilderOptionsSchema.shape), input, 'kaniko builder options');
  let namespace = data.namespace;
  if (!namespace && existsSync(namespaceFile)) namespace = readFileSync(namespaceFile, 'utf8').trim() || undefined;
  return { ...data, namespace: namespace ?? KANIKO_DEFAULTS.namespace, logger: data.logger ?? silentLogger };
}
