import { createReadStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { LaunchError, type CallContext, type ContextStore } from '@launch/core';
import { contextArchiveSize, describeValue } from '@launch/core/internal';
import type { Storage } from '@google-cloud/storage';
import { parseWith, tokenError, type GcpEnvironment } from './environment.js';
import { cancelledError, gcpErrorInfo, isAbortError, isNetworkError, safeCause } from './errors.js';
import { objectNameProblemOf, parseGcsUri, splitGcsObjectUri } from './gcs-uri.js';
import { loadStorage } from './sdk.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The seed guide's permissions for the build-context bucket. */
export const GCS_CONTEXT_PERMISSIONS = ['storage.buckets.get', 'storage.objects.create', 'storage.objects.delete', 'storage.objects.get'] as const;

const OAUTH_ERRORS = new Set(['invalid_grant', 'invalid_client', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope']);

export const isGcpEnvironment = (v: unknown): v is GcpEnvironment =>
  typeof v === 'object' &&
  v !== null &&
  (v as GcpEnvironment).type === 'gcp' &&
  typeof (v as GcpEnvironment).accessToken === 'function' &&
  typeof (v as GcpEnvironment).authClient === 'function';

const optionsSchema = z
  .object({
    uri: z.string().min(1),
    environment: z.custom<GcpEnvironment>(isGcpEnvironment, 'a GcpEnvironment from createGcpEnvironment()'),
    apiEndpoint: z.url().optional(),
    chunkSizeMiB: z.number().int().min(1).max(256).optional(),
    verifyWrite: z.boolean().optional(),
  })
  .strict();

/** Options of {@link createGcsContextStore}. */
export interface GcsContextStoreOptions {
  /** `gs://<bucket>/<prefix>` (the config's `builder.build-context-store`). */
  uri: string;
  /** The GCP environment whose credentials to use. */
  environment: GcpEnvironment;
  /** The JSON API endpoint, e.g. `http://127.0.0.1:4443` for a test server; default Google's. Auth is sent to it. */
  apiEndpoint?: string;
  /** Resumable-upload chunk size in MiB (1–256). Default 16. An upload holds about one chunk in memory. */
  chunkSizeMiB?: number;
  /** Whether `verify` also writes and deletes a small probe object (`storage.objects.create`, `storage.objects.delete`). Default true. */
  verifyWrite?: boolean;
}

/** The GCS build-context store: the `ContextStore` contract plus where it writes. */
export interface GcsContextStore extends ContextStore {
  readonly name: 'gcs';
  readonly bucket: string;
  readonly prefix: string;
  /** The object name `key` is stored under (`<prefix>/<key>`), after checking `key`. */
  objectName(key: string): string;
}

/**
 * A GCS bucket (and prefix) where build contexts go for kaniko (`build-context-store: gs://bucket/prefix`).
 *
 * - `verify` gets the bucket's metadata as W&B's `get_bucket` does: a 404 says the bucket does not
 *   exist; a 403 names the seed's four permissions. Then, unless `verifyWrite` is false, it writes and
 *   deletes a small probe object under the prefix.
 * - `upload` streams the file into a resumable upload in `chunkSizeMiB` chunks (`Content-Range`, 308
 *   until the last), so memory stays near one chunk whatever the file's size; the library checks the
 *   object's CRC32C against the bytes sent. It returns `gs://bucket/prefix/key`.
 * - `delete` removes an object this store wrote; a missing object is success.
 *
 * Errors are LaunchErrors of category `ContextUpload` naming the bucket and the permission; none holds
 * a token or key. `@google-cloud/storage` is loaded on the first call.
 *
 * @example
 * const store = createGcsContextStore({ uri: 'gs://my-bucket/launch', environment: gcp });
 * await store.verify({ logger });
 * const { uri } = await store.upload('/tmp/context.tgz', `${runId}.tgz`, { logger }); // gs://my-bucket/launch/<runId>.tgz
 */
export function createGcsContextStore(options: GcsContextStoreOptions): GcsContextStore {
  const opts = parseWith(optionsSchema, options, 'GCS context store options', Object.keys(optionsSchema.shape));
  const { bucket, prefix } = parseGcsUri(opts.uri);
  const environment = opts.environment;
  const chunkSize = (opts.chunkSizeMiB ?? 16) * MiB;
  const where = `gs://${bucket}${prefix ? `/${prefix}` : ''}`;
  const permissionText = `${GCS_CONTEXT_PERMISSIONS.join(', ')} on gs://${bucket}`;

  let storage: Promise<Storage> | undefined;
  const getStorage = () =>
    (storage ??= (async () => {
      const [{ Storage }, authClient] = await Promise.all([loadStorage(), environment.authClient()]);
      return new Storage({
        authClient: authClient as never,
        ...(environment.project ? { projectId: environment.project } : {}),
        ...(opts.apiEndpoint ? { apiEndpoint: opts.apiEndpoint, useAuthWithCustomEndpoint: true } : {}),
      });
    })().catch((error: unknown) => {
      storage = undefined;
      throw error;
    }));

  const objectName = (key: string): string => {
    const problem = typeof key === 'string' ? objectNameProblemOf(key) : `is ${describeValue(key)}, not a string`;
    const full = prefix ? `${prefix}/${key}` : key;
    const fullProblem = problem ?? objectNameProblemOf(full);
    if (fullProblem) {
      throw new LaunchError({
        code: 'context_store.invalid_key',
        stage: 'build',
        category: 'ContextUpload',
        message: `GCS context store ${where}: key ${describeValue(key, 120)} ${fullProblem}`,
        hint: 'use keys of letters, digits and - _ . / (such as <run id>.tgz)',
      });
    }
    return full;
  };

  /** Maps a storage failure of `action` to a ContextUpload LaunchError. */
  const fail = (error: unknown, action: string, permission: string): LaunchError => {
    if (LaunchError.isInstance(error)) return error;
    if (isAbortError(error)) return cancelledError('context_store.cancelled', `GCS ${action} on ${where}`, 'build');
    const info = gcpErrorInfo(error);
    if ((info.reason && OAUTH_ERRORS.has(info.reason)) || /Could not load the default credentials/i.test(info.message)) {
      const e = tokenError(error, `GCS context store ${where}`, 'build');
      return new LaunchError({
        code: e.code,
        stage: 'build',
        category: 'ContextUpload',
        retryable: e.retryable,
        message: e.message,
        hint: e.hint,
        cause: e.cause as Error | undefined,
      });
    }
    const cause = safeCause(error);
    if (isNetworkError(error)) {
      return new LaunchError({
        code: 'context_store.unavailable',
        stage: 'build',
        category: 'ContextUpload',
        retryable: true,
        message: `GCS did not answer ${action} for ${where} (${info.networkCode})`,
        hint: `check the network path to storage.googleapis.com${opts.apiEndpoint ? ` (endpoint ${opts.apiEndpoint})` : ''}`,
        cause,
      });
    }
    if (info.status === 404 && action === 'get bucket') {
      return new LaunchError({
        code: 'context_store.bucket_not_found',
        stage: 'build',
        category: 'ContextUpload',
        message: `GCS bucket "${bucket}" does not exist (get bucket answered 404)`,
        hint: `create the bucket (gcloud storage buckets create gs://${bucket}), or fix build-context-store (found ${where})`,
        cause,
      });
    }
    if (info.status === 404 && /bucket does not exist/i.test(info.message)) {
      return new LaunchError({
        code: 'context_store.bucket_not_found',
        stage: 'build',
        category: 'ContextUpload',
        message: `GCS bucket "${bucket}" does not exist (${action} answered 404)`,
        hint: `create the bucket, or fix build-context-store (found ${where})`,
        cause,
      });
    }
    if (info.status === 401) {
      return new LaunchError({
        code: 'context_store.credentials_rejected',
        stage: 'build',
        category: 'ContextUpload',
        message: `GCS rejected the access token for bucket "${bucket}": ${action} answered 401`,
        hint: 'the token was refused: check the credentials the agent uses (GOOGLE_APPLICATION_CREDENTIALS, workload identity); they are not shown here',
        cause,
      });
    }
    if (info.status === 403) {
      return new LaunchError({
        code: 'context_store.forbidden',
        stage: 'build',
        category: 'ContextUpload',
        message: `access denied to GCS bucket "${bucket}": ${action} answered 403 (needs ${permission})`,
        hint: `grant the agent's service account ${permissionText} (for example roles/storage.objectUser plus storage.buckets.get); a 403 also comes from a bucket in another project whose IAM policy does not name this principal`,
        cause,
      });
    }
    return new LaunchError({
      code: 'context_store.failed',
      stage: 'build',
      category: 'ContextUpload',
      retryable: info.status === undefined || info.status >= 500 || info.status === 429,
      message: `GCS ${action} on ${where} failed: ${info.reason ?? 'error'}${info.status ? ` (HTTP ${info.status})` : ''}`,
      hint: 'see the cause',
      cause,
    });
  };

  /** Streams `source` into a resumable upload of `name`. */
  const uploadStream = async (source: NodeJS.ReadableStream, name: string, signal: AbortSignal | undefined) => {
    const gcs = await getStorage();
    const file = gcs.bucket(bucket).file(name);
    const metadata = { contentType: 'application/octet-stream' };
    // The session is begun first (an authenticated POST): @google-cloud/storage 7 drops
    // `useAuthWithCustomEndpoint` on the write-stream path, so with a custom apiEndpoint its own POST
    // would go out without a token. The session URI itself needs no token, as on GCS.
    const [uri] = await file.createResumableUpload({ metadata });
    const sink = file.createWriteStream({ resumable: true, uri, chunkSize, validation: 'crc32c', metadata });
    await pipeline(source, sink, ...(signal ? [{ signal }] : []));
  };

  const store: GcsContextStore = {
    specificationVersion: 'v1',
    name: 'gcs',
    bucket,
    prefix,
    objectName,

    async verify(ctx: CallContext): Promise<void> {
      const gcs = await getStorage().catch((error: unknown) => {
        throw fail(error, 'get bucket', 'storage.buckets.get');
      });
      try {
        await gcs.bucket(bucket).getMetadata();
      } catch (error) {
        throw fail(error, 'get bucket', 'storage.buckets.get');
      }
      if (opts.verifyWrite === false) return;
      const probe = objectName(`.launch-verify-${randomBytes(6).toString('hex')}`);
      try {
        const { Readable } = await import('node:stream');
        await uploadStream(Readable.from([Buffer.from('launch verify\n')]), probe, ctx.signal);
      } catch (error) {
        throw fail(error, 'create object', 'storage.objects.create');
      }
      try {
        await gcs.bucket(bucket).file(probe).delete({ ignoreNotFound: true });
      } catch (error) {
        throw fail(error, 'delete object', 'storage.objects.delete');
      }
      ctx.logger.debug({ bucket, prefix }, 'gcs context store: verified');
    },

    async upload(localPath: string, key: string, ctx: CallContext): Promise<{ uri: string }> {
      const name = objectName(key);
      const size = await contextArchiveSize(localPath, where);
      if (ctx.signal?.aborted) throw cancelledError('context_store.cancelled', `GCS upload to ${where}`, 'build');
      const started = Date.now();
      try {
        await uploadStream(createReadStream(localPath, { highWaterMark: MiB }), name, ctx.signal);
      } catch (error) {
        if (ctx.signal?.aborted) throw cancelledError('context_store.cancelled', `GCS upload to ${where}`, 'build');
        throw fail(error, 'upload (resumable)', 'storage.objects.create');
      }
      const uri = `gs://${bucket}/${name}`;
      ctx.logger.debug({ uri, bytes: size, ms: Date.now() - started }, 'gcs context store: uploaded');
      return { uri };
    },

    async delete(uri: string, ctx: CallContext): Promise<void> {
      const parts = splitGcsObjectUri(uri);
      if (!parts || parts.bucket !== bucket || (prefix && !parts.name.startsWith(`${prefix}/`))) {
        throw new LaunchError({
          code: 'context_store.foreign_uri',
          stage: 'build',
          category: 'ContextUpload',
          message: `GCS context store ${where} will not delete ${describeValue(uri, 200)}: it is not an object under ${where}/`,
          hint: 'delete only the URIs this store returned from upload',
        });
      }
      const gcs = await getStorage();
      try {
        await gcs.bucket(bucket).file(parts.name).delete({ ignoreNotFound: true });
      } catch (error) {
        if (gcpErrorInfo(error).status === 404 && !/bucket does not exist/i.test(gcpErrorInfo(error).message)) return;
        throw fail(error, 'delete object', 'storage.objects.delete');
      }
      ctx.logger.debug({ uri }, 'gcs context store: deleted');
    },
  };
  return store;
}
