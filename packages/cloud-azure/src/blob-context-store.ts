import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { LaunchError, type CallContext, type ContextStore } from '@launch/core';
import { contextArchiveSize, describeValue } from '@launch/core/internal';
import type { ContainerClient } from '@azure/storage-blob';
import { createAzureEnvironment, parseWith, type AzureEnvironment, type TokenCredential } from './environment.js';
import { blobKeyProblem, parseBlobUri, type BlobLocation } from './blob-uri.js';
import { azureErrorInfo, cancelledError, isAbortError, isNetworkError, safeCause, tokenError } from './errors.js';
import { loadBlob } from './sdk.js';

const MiB = 1024 * 1024;

/** The role the agent's identity needs on the container (or its account) to use it as a context store. */
export const BLOB_ROLE = 'Storage Blob Data Contributor';

const optionsSchema = z
  .object({
    uri: z.string().min(1),
    environment: z
      .custom<AzureEnvironment>(
        (v) => typeof v === 'object' && v !== null && (v as AzureEnvironment).type === 'azure' && typeof (v as AzureEnvironment).credential === 'function',
        'an AzureEnvironment from createAzureEnvironment()',
      )
      .optional(),
    credential: z
      .custom<TokenCredential>(
        (v) => typeof v === 'object' && v !== null && typeof (v as TokenCredential).getToken === 'function',
        'a TokenCredential (an object with getToken)',
      )
      .optional(),
    accountKey: z
      .string()
      .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'a storage account key (base64)')
      .optional(),
    blockSizeMiB: z.number().int().min(1).max(4000).optional(),
    concurrency: z.number().int().min(1).max(16).optional(),
    verifyWrite: z.boolean().optional(),
    maxTries: z.number().int().min(1).max(10).optional(),
  })
  .strict();

/** Options of {@link createAzureBlobContextStore}: the URI and one way to authenticate. */
export interface AzureBlobContextStoreOptions {
  /** `https://<account>.blob.core.windows.net/<container>[/<prefix>]` (`builder.build-context-store`), or an Azurite URL `http://127.0.0.1:<port>/<account>/<container>[/<prefix>]`. */
  uri: string;
  /** The Azure environment whose credential (`DefaultAzureCredential`) to use. */
  environment?: AzureEnvironment;
  /** A token credential instead of an environment (tests, embedders). */
  credential?: TokenCredential;
  /** The storage account's shared key (the chart's `azureStorageAccessKey`, kaniko's `AZURE_STORAGE_ACCESS_KEY`) instead of AAD. A secret: never logged. */
  accountKey?: string;
  /** Block size in MiB (also the largest file sent as one Put Blob). Default 8. Blocks are streamed from the file, not buffered whole. */
  blockSizeMiB?: number;
  /** Blocks uploaded at once (1–16). Default 4. */
  concurrency?: number;
  /** Whether `verify` also writes and deletes a small probe blob. Default true. */
  verifyWrite?: boolean;
  /** SDK attempts per request (retries + 1). Default the SDK's 4. */
  maxTries?: number;
}

/** The Azure Blob build-context store: the `ContextStore` contract plus where it writes and what kaniko needs. */
export interface AzureBlobContextStore extends ContextStore {
  readonly name: 'azure-blob';
  readonly account: string;
  readonly container: string;
  readonly prefix: string;
  /** The blob name `key` is stored under (`<prefix>/<key>`), after checking `key`. */
  blobName(key: string): string;
  /**
   * What kaniko needs to read the context with a shared key, as W&B sets it up: the secret
   * `azure-storage-access-key` (key `password`) exposed as `AZURE_STORAGE_ACCESS_KEY`.
   */
  readonly kaniko: { readonly secretName: 'azure-storage-access-key'; readonly secretKey: 'password'; readonly env: 'AZURE_STORAGE_ACCESS_KEY' };
  /** Removes a blob this store returned from `upload`; a missing blob is not an error. */
  delete(uri: string, ctx: CallContext): Promise<void>;
}

/**
 * An Azure Blob container (and blob-name prefix) where build contexts go for kaniko
 * (`build-context-store: https://<account>.blob.core.windows.net/<container>`).
 *
 * - `verify` reads the container's properties (404: it does not exist; 403: the identity lacks the
 *   role `Storage Blob Data Contributor`), then writes and deletes a small probe blob unless `verifyWrite` is false.
 * - `upload` streams the packed context file as blocks (`BlockBlobClient.uploadFile`: each block of
 *   `blockSizeMiB` is read from its own range of the file, `concurrency` at once, then Put Block List;
 *   one Put Blob for a file of at most one block), so memory stays flat whatever the file's size, and
 *   returns the blob's `https://…` URL, the form W&B passes to kaniko's `--context`.
 * - `delete` removes a blob this store wrote; a missing blob is success.
 *
 * Authentication: the environment's (or the given) token credential, or the account key. Errors are
 * LaunchErrors of category `ContextUpload`; none holds a key or a token. The SDK is loaded on the first call.
 *
 * @example
 * const store = createAzureBlobContextStore({ uri: 'https://acct.blob.core.windows.net/contexts', environment: createAzureEnvironment() });
 * const { uri } = await store.upload('/tmp/context.tgz', `${runId}.tgz`, { logger });
 */
export function createAzureBlobContextStore(options: AzureBlobContextStoreOptions): AzureBlobContextStore {
  const opts = parseWith(optionsSchema, options, 'Azure Blob context store options', Object.keys(optionsSchema.shape));
  const location: BlobLocation = parseBlobUri(opts.uri);
  const given = [opts.environment && 'environment', opts.credential && 'credential', opts.accountKey && 'accountKey'].filter(Boolean);
  if (given.length > 1) {
    throw new LaunchError({
      code: 'azure.invalid_options',
      stage: 'agent',
      message: `Azure Blob context store options: give one of environment, credential and accountKey, found ${given.join(' and ')}`,
      hint: 'keep one way to authenticate',
    });
  }
  const { account, container, prefix, base } = location;
  const blockSize = (opts.blockSizeMiB ?? 8) * MiB;
  const concurrency = opts.concurrency ?? 4;
  const where = base;
  const environment = opts.accountKey ? undefined : (opts.environment ?? createAzureEnvironment(opts.credential ? { credential: opts.credential } : {}));
  const authText = opts.accountKey ? `the account key of ${account}` : `Azure AD (${environment!.chain})`;

  let client: Promise<ContainerClient> | undefined;
  const getClient = () =>
    (client ??= (async () => {
      const { ContainerClient, StorageSharedKeyCredential } = await loadBlob();
      const credential = opts.accountKey ? new StorageSharedKeyCredential(account, opts.accountKey) : await environment!.credential();
      return new ContainerClient(`${location.serviceUrl}/${container}`, credential, {
        retryOptions: { ...(opts.maxTries ? { maxTries: opts.maxTries } : {}) },
        userAgentOptions: { userAgentPrefix: 'launch-agent' },
      });
    })().catch((error: unknown) => {
      client = undefined;
      throw error;
    }));

  const blobName = (key: string): string => {
    const problem = typeof key === 'string' ? blobKeyProblem(key) : `is ${describeValue(key)}, not a string`;
    const full = prefix ? `${prefix}/${key}` : key;
    const fullProblem = problem ?? blobKeyProblem(full);
    if (fullProblem) {
      throw new LaunchError({
        code: 'context_store.invalid_key',
        stage: 'build',
        category: 'ContextUpload',
        message: `Azure Blob context store ${where}: key ${describeValue(key, 120)} ${fullProblem}`,
        hint: "use keys of letters, digits and -_.!*'()+=@,:/~ (such as <run id>.tgz)",
      });
    }
    return full;
  };

  const fail = (error: unknown, action: string): LaunchError => {
    if (LaunchError.isInstance(error)) return error;
    if (isAbortError(error)) return cancelledError('context_store.cancelled', `Azure Blob ${action} on ${where}`, 'build');
    const info = azureErrorInfo(error);
    if (info.name === 'CredentialUnavailableError' || info.name === 'AggregateAuthenticationError' || info.name === 'AuthenticationError') {
      return tokenError(
        {
          what: `Azure Blob context store ${where}`,
          scope: 'https://storage.azure.com/.default',
          chain: environment?.chain ?? authText,
          stage: 'build',
          category: 'ContextUpload',
        },
        error,
      );
    }
    const cause = safeCause(error);
    if (isNetworkError(error)) {
      return new LaunchError({
        code: 'context_store.unavailable',
        stage: 'build',
        category: 'ContextUpload',
        retryable: true,
        message: `Azure Blob Storage did not answer ${action} for ${where} (${info.code ?? info.name})`,
        hint: `check that the storage account "${account}" exists and the network path to ${location.serviceUrl}`,
        cause,
      });
    }
    if (info.status === 404 && (info.code === 'ContainerNotFound' || action === 'get container properties')) {
      return new LaunchError({
        code: 'context_store.bucket_not_found',
        stage: 'build',
        category: 'ContextUpload',
        message: `Azure Blob container "${container}" does not exist in storage account "${account}" (${action} answered 404)`,
        hint: `create the container, or fix build-context-store (found ${where})`,
        cause,
      });
    }
    // A shared key bypasses RBAC: any other 403 with a key is the key (or the account refusing keys).
    const keyRefused = opts.accountKey !== undefined && info.status === 403 && info.code !== 'AuthorizationPermissionMismatch';
    if (keyRefused || (info.status === 403 && (info.code === 'AuthenticationFailed' || info.code === 'InvalidAuthenticationInfo'))) {
      return new LaunchError({
        code: 'context_store.credentials_rejected',
        stage: 'build',
        category: 'ContextUpload',
        message: `Azure Blob Storage rejected the credentials for "${account}": ${action} answered 403${info.code ? ` ${info.code}` : ''}`,
        hint: opts.accountKey
          ? 'check the storage account key (azureStorageAccessKey; it is not shown here); the account may also disallow shared-key access or block this network'
          : 'the token was not accepted (expired, or for another tenant): check the identity the agent uses',
        cause,
      });
    }
    if (info.status === 403) {
      return new LaunchError({
        code: 'context_store.forbidden',
        stage: 'build',
        category: 'ContextUpload',
        message: `access denied to Azure Blob container "${container}" of "${account}": ${action} answered 403${info.code ? ` ${info.code}` : ''}`,
        hint: `assign the role ${BLOB_ROLE} on the container (or the storage account) to the agent's identity; a 403 also comes from the account's firewall (networking: allowed networks)`,
        cause,
      });
    }
    if (info.status === 401) {
      return new LaunchError({
        code: 'context_store.credentials_rejected',
        stage: 'build',
        category: 'ContextUpload',
        message: `Azure Blob Storage did not accept ${authText} for "${account}": ${action} answered 401`,
        hint: 'check the identity the agent uses',
        cause,
      });
    }
    return new LaunchError({
      code: 'context_store.failed',
      stage: 'build',
      category: 'ContextUpload',
      retryable: info.status !== undefined && (info.status >= 500 || info.status === 429),
      message: `Azure Blob ${action} on ${where} failed: ${info.name}${info.status ? ` (HTTP ${info.status})` : ''}${info.code ? ` ${info.code}` : ''}`,
      hint: 'see the cause',
      cause,
    });
  };

  const blobNameOfUri = (uri: string): string | undefined => {
    if (typeof uri !== 'string' || !uri.startsWith(`${base}/`)) return undefined;
    const name = (prefix ? `${prefix}/` : '') + uri.slice(base.length + 1);
    return blobKeyProblem(name) ? undefined : name;
  };

  return {
    specificationVersion: 'v1',
    name: 'azure-blob',
    account,
    container,
    prefix,
    blobName,
    kaniko: { secretName: 'azure-storage-access-key', secretKey: 'password', env: 'AZURE_STORAGE_ACCESS_KEY' },

    async verify(ctx: CallContext): Promise<void> {
      const containerClient = await getClient();
      try {
        await containerClient.getProperties({ abortSignal: ctx.signal as never });
      } catch (error) {
        throw fail(error, 'get container properties');
      }
      if (opts.verifyWrite === false) return;
      const probe = containerClient.getBlockBlobClient(blobName(`.launch-verify-${randomBytes(6).toString('hex')}`));
      try {
        await probe.upload('launch verify\n', 14, { abortSignal: ctx.signal as never });
      } catch (error) {
        throw fail(error, 'write a probe blob');
      }
      try {
        await probe.deleteIfExists({ abortSignal: ctx.signal as never });
      } catch (error) {
        throw fail(error, 'delete the probe blob');
      }
      ctx.logger.debug({ account, container, prefix }, 'azure blob context store: verified');
    },

    async upload(localPath: string, key: string, ctx: CallContext): Promise<{ uri: string }> {
      const name = blobName(key);
      const size = await contextArchiveSize(localPath, where);
      if (ctx.signal?.aborted) throw cancelledError('context_store.cancelled', `Azure Blob upload to ${where}`, 'build');
      const containerClient = await getClient();
      const blob = containerClient.getBlockBlobClient(name);
      const started = Date.now();
      try {
        // uploadFile reads each block from the file as its own range stream (re-opened on a retry),
        // so no block is held in memory whole: memory stays flat whatever the file's size.
        await blob.uploadFile(localPath, {
          blockSize,
          concurrency,
          maxSingleShotSize: blockSize,
          abortSignal: ctx.signal as never,
          blobHTTPHeaders: { blobContentType: 'application/octet-stream' },
        });
      } catch (error) {
        if (ctx.signal?.aborted) throw cancelledError('context_store.cancelled', `Azure Blob upload to ${where}`, 'build');
        throw fail(error, 'upload (Put Blob / Put Block / Put Block List)');
      }
      const uri = `${base}/${name.slice(prefix ? prefix.length + 1 : 0)}`;
      ctx.logger.debug({ uri, bytes: size, ms: Date.now() - started }, 'azure blob context store: uploaded');
      return { uri };
    },

    async delete(uri: string, ctx: CallContext): Promise<void> {
      const name = blobNameOfUri(uri);
      if (!name) {
        throw new LaunchError({
          code: 'context_store.foreign_uri',
          stage: 'build',
          category: 'ContextUpload',
          message: `Azure Blob context store ${where} will not delete ${describeValue(uri, 200)}: it is not a blob under ${where}/`,
          hint: 'delete only the URIs this store returned from upload',
        });
      }
      const containerClient = await getClient();
      try {
        await containerClient.getBlockBlobClient(name).deleteIfExists({ abortSignal: ctx.signal as never });
      } catch (error) {
        throw fail(error, 'delete blob');
      }
      ctx.logger.debug({ uri }, 'azure blob context store: deleted');
    },
  };
}
