import { LaunchError, type AgentConfig, type ContextStore } from '@launch/core';
import { createPvcContextStore } from '@launch/builders';
import type { CloudType, EnvironmentLoader } from './select-environment.js';

/** Where kaniko build contexts go: a cloud store named by `builder.build-context-store`, or a PVC. */
export type ContextStorePlan =
  | { kind: 's3' | 'gcs' | 'azure-blob'; uri: string; cloud: CloudType; from: 'builder.build-context-store' }
  | { kind: 'pvc'; pvcName: string; mountPath: string; from: 'WANDB_LAUNCH_KANIKO_PVC_NAME' };

const STORE_NAMES = { s3: 'Amazon S3', gcs: 'Google Cloud Storage', 'azure-blob': 'Azure Blob Storage', pvc: 'a PersistentVolumeClaim' } as const;
const AZURE_BLOB = /^https:\/\/[^./\s]+\.blob\.core\.windows\.net\//;

function configError(message: string, hint: string, cause?: unknown): LaunchError {
  return new LaunchError({ code: 'config.context_store', message, hint, ...(cause ? { cause } : {}) });
}

/**
 * The context store kaniko builds use, by W&B's rules: `builder.build-context-store` by its URI
 * scheme (`s3://` → S3, `gs://` → GCS, `https://<account>.blob.core.windows.net/…` → Azure Blob),
 * else the PVC named by `WANDB_LAUNCH_KANIKO_PVC_NAME` (the Helm chart's `kanikoPvcName`), mounted in
 * the agent at `WANDB_LAUNCH_KANIKO_PVC_MOUNT_PATH` (default `/kaniko`). Undefined when neither is set.
 * Throws a config error (exit 2) for a store URI of no known kind.
 */
export function contextStorePlan(config: AgentConfig, env: Record<string, string | undefined>): ContextStorePlan | undefined {
  const uri = config.builder?.['build-context-store'];
  if (uri !== undefined) {
    const from = 'builder.build-context-store' as const;
    if (uri.startsWith('s3://')) return { kind: 's3', uri, cloud: 'aws', from };
    if (uri.startsWith('gs://')) return { kind: 'gcs', uri, cloud: 'gcp', from };
    if (AZURE_BLOB.test(uri)) return { kind: 'azure-blob', uri, cloud: 'azure', from };
    throw configError(
      `builder.build-context-store ${JSON.stringify(uri)} is not a store the agent knows`,
      'use s3://<bucket>/<prefix>, gs://<bucket>/<prefix> or https://<account>.blob.core.windows.net/<container>/<prefix>',
    );
  }
  const pvcName = env.WANDB_LAUNCH_KANIKO_PVC_NAME;
  if (pvcName) return { kind: 'pvc', pvcName, mountPath: env.WANDB_LAUNCH_KANIKO_PVC_MOUNT_PATH || '/kaniko', from: 'WANDB_LAUNCH_KANIKO_PVC_NAME' };
  return undefined;
}

/** The store URI as shown: a query (an Azure SAS token) and user info are never printed. */
export function shownStoreUri(uri: string): string {
  return uri.replace(/\?.*$/s, '?<redacted>').replace(/^(\w+:\/\/)[^/@]*@/, '$1<redacted>@');
}

/** The line `config check` and start-up print for the store (no SDK is loaded). */
export function describeContextStore(plan: ContextStorePlan | undefined): string {
  if (!plan) return 'context store: none (no builder.build-context-store and no WANDB_LAUNCH_KANIKO_PVC_NAME)';
  if (plan.kind === 'pvc')
    return `context store: PVC ${plan.pvcName} (${STORE_NAMES.pvc}, from ${plan.from}), mounted in the agent at ${plan.mountPath} and in build pods at /context`;
  const credentials = { aws: 'the AWS default credential chain', gcp: 'Application Default Credentials', azure: 'DefaultAzureCredential' }[plan.cloud];
  return `context store: ${shownStoreUri(plan.uri)} (${STORE_NAMES[plan.kind]}, from ${plan.from}); credentials from ${credentials}`;
}

/**
 * The `ContextStore` for a plan: the cloud store from its package (imported only now, with the
 * environment the loader shares with the registry), or the PVC store. S3 honours
 * `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` through the AWS environment.
 */
export async function createContextStore(plan: ContextStorePlan, environments: EnvironmentLoader): Promise<ContextStore> {
  try {
    if (plan.kind === 'pvc') return createPvcContextStore({ mountPath: plan.mountPath });
    if (plan.kind === 's3') {
      const { createS3ContextStore } = await import('@launch/cloud-aws');
      return createS3ContextStore({ uri: plan.uri, environment: await environments.get('aws') });
    }
    if (plan.kind === 'gcs') {
      const { createGcsContextStore } = await import('@launch/cloud-gcp');
      return createGcsContextStore({ uri: plan.uri, environment: await environments.get('gcp') });
    }
    const { createAzureBlobContextStore } = await import('@launch/cloud-azure');
    return createAzureBlobContextStore({ uri: plan.uri, environment: await environments.get('azure') });
  } catch (error) {
    const cause = LaunchError.isInstance(error) ? error : undefined;
    throw configError(
      `${plan.from} ${JSON.stringify(plan.kind === 'pvc' ? plan.pvcName : shownStoreUri(plan.uri))} cannot be used: ${(error instanceof Error ? error.message : String(error)).split(plan.kind === 'pvc' ? plan.pvcName : plan.uri).join(plan.kind === 'pvc' ? plan.pvcName : shownStoreUri(plan.uri))}`,
      cause?.hint ?? 'fix builder.build-context-store (or the environment block for its cloud)',
      error,
    );
  }
}
