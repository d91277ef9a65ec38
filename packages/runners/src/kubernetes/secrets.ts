import { LaunchError, type RegistryCredentials } from '@launch/core';
import { isConflict, isNotFound, isRetryable, kubeError } from './api-errors.js';
import type { Cluster } from './cluster.js';
import { CREATED_BY, dnsSafe, LABEL } from './labels.js';
import { API_KEY_SECRET_KEY } from './manifest.js';

/** W&B's secret names: `wandb-api-key-<run id>` per run, `wandb-api-key-<release>` under Helm, `regcred-<run id>`. */
export const apiKeySecretName = (runIdOrRelease: string) => dnsSafe(`wandb-api-key-${runIdOrRelease}`, 253);
export const pullSecretName = (runId: string) => dnsSafe(`regcred-${runId}`, 253);

export interface SecretInput {
  cluster: Cluster;
  namespace: string;
  name: string;
  labels: Record<string, string>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Retries retryable API failures (5 attempts, backoff from `baseMs`), as W&B does for its key secret. */
async function withRetry<T>(fn: () => Promise<T>, baseMs: number): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= 5 || !isRetryable(error)) throw error;
      await sleep(Math.min(60_000, baseMs * 2 ** (attempt - 1)));
    }
  }
}

async function createOrReplace(input: SecretInput, body: Record<string, unknown>, baseMs: number): Promise<void> {
  const { cluster, namespace, name } = input;
  try {
    await withRetry(() => cluster.core.createNamespacedSecret({ namespace, body: body as never }), baseMs);
  } catch (error) {
    if (!isConflict(error)) throw kubeError(error, { verb: 'create', resource: 'core/secrets', namespace, name });
    // A secret left by an earlier attempt of the same run (a requeue keeps the run id): replace it, but only ours.
    const existing = await cluster.core.readNamespacedSecret({ name, namespace }).catch((e: unknown) => {
      throw kubeError(e, { verb: 'get', resource: 'core/secrets', namespace, name });
    });
    if (existing.metadata?.labels?.[LABEL.createdBy] !== CREATED_BY) {
      throw new LaunchError({
        code: 'run.secret_conflict',
        stage: 'run',
        message: `secret "${name}" already exists in namespace "${namespace}" and was not created by the launch agent`,
        hint: `delete or rename the secret "${name}", or run the job with another run id`,
      });
    }
    await cluster.core.replaceNamespacedSecret({ name, namespace, body: body as never }).catch((e: unknown) => {
      throw kubeError(e, { verb: 'update', resource: 'core/secrets', namespace, name });
    });
  }
}

/** Creates the `kubernetes.io/basic-auth` secret holding the run's API key (key `password`). */
export async function createApiKeySecret(input: SecretInput & { apiKey: string; retryBaseMs?: number }): Promise<void> {
  const body = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/basic-auth',
    metadata: { name: input.name, namespace: input.namespace, labels: { ...input.labels, [LABEL.createdBy]: CREATED_BY } },
    stringData: { [API_KEY_SECRET_KEY]: input.apiKey },
  };
  await createOrReplace(input, body, input.retryBaseMs ?? 1000);
}

/** Host of a registry URI (`host[:port]/path` → `host[:port]`). */
export function registryServer(uri: string): string {
  return uri.replace(/^[a-z]+:\/\//i, '').split('/')[0] ?? '';
}

/** Creates a `kubernetes.io/dockerconfigjson` image-pull secret for one registry. */
export async function createPullSecret(input: SecretInput & { server: string; credentials: RegistryCredentials; retryBaseMs?: number }): Promise<void> {
  const { username, password } = input.credentials;
  const auth = Buffer.from(`${username}:${password}`).toString('base64');
  const config = { auths: { [input.server]: { username, password, auth } } };
  const body = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/dockerconfigjson',
    metadata: { name: input.name, namespace: input.namespace, labels: { ...input.labels, [LABEL.createdBy]: CREATED_BY } },
    data: { '.dockerconfigjson': Buffer.from(JSON.stringify(config)).toString('base64') },
  };
  await createOrReplace(input, body, input.retryBaseMs ?? 1000);
}

/** Deletes a secret; one already gone is not an error. */
export async function deleteSecret(cluster: Cluster, namespace: string, name: string): Promise<void> {
  try {
    await cluster.core.deleteNamespacedSecret({ name, namespace });
  } catch (error) {
    if (!isNotFound(error)) throw kubeError(error, { verb: 'delete', resource: 'core/secrets', namespace, name });
  }
}
