import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { LaunchError, type CallContext, type ContextStore } from '@launch/core';
import { contextArchiveSize, describeValue } from '@launch/core/internal';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  createAwsEnvironment,
  parseWith,
  AWS_REGION_PATTERN,
  type AwsCredentialIdentity,
  type AwsCredentialIdentityProvider,
  type AwsEnvironment,
} from './environment.js';
import { awsErrorInfo, cancelledError, isAbortError, isNetworkError, isNoCredentialsError, noCredentialsError, safeCause } from './errors.js';
import { keyProblemOf, parseS3Uri, splitS3ObjectUri, type S3Location } from './s3-uri.js';
import { loadS3 } from './sdk.js';
import { uploadFileInParts } from './s3-upload.js';

const MiB = 1024 * 1024;

const optionsSchema = z
  .object({
    uri: z.string().min(1),
    environment: z
      .custom<AwsEnvironment>(
        (v) => typeof v === 'object' && v !== null && (v as AwsEnvironment).type === 'aws' && typeof (v as AwsEnvironment).clientConfig === 'function',
        'an AwsEnvironment from createAwsEnvironment()',
      )
      .optional(),
    region: z.string().regex(AWS_REGION_PATTERN, 'an AWS region such as us-east-1').optional(),
    credentials: z
      .custom<
        AwsCredentialIdentity | AwsCredentialIdentityProvider
      >((v) => typeof v === 'function' || (typeof v === 'object' && v !== null), 'credentials or a credential provider')
      .optional(),
    endpoint: z.url().optional(),
    forcePathStyle: z.boolean().optional(),
    partSizeMiB: z.number().int().min(5).max(512).optional(),
    queueSize: z.number().int().min(1).max(16).optional(),
    verifyWrite: z.boolean().optional(),
  })
  .strict();

/** Options of {@link createS3ContextStore}. */
export interface S3ContextStoreOptions {
  /** `s3://<bucket>/<prefix>` (the config's `builder.build-context-store`). */
  uri: string;
  /** The AWS environment whose region and credentials to use; default one made from `region` (and `credentials`). */
  environment?: AwsEnvironment;
  /** Region of the bucket when it differs from the environment's (or when no environment is given). */
  region?: string;
  /** Credentials when no `environment` is given (tests, embedders); default the SDK's chain. Never logged. */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** S3 endpoint, e.g. `http://127.0.0.1:4569` for s3rver; default the environment's `endpoints.s3`, else AWS. */
  endpoint?: string;
  /** Path-style addressing (`endpoint/bucket/key`), needed by most S3 emulators. Default false. */
  forcePathStyle?: boolean;
  /** Multipart part size in MiB (5–512). Default 8. Memory held by an upload is about `partSizeMiB × queueSize`. */
  partSizeMiB?: number;
  /** Parts uploaded at once (1–16). Default 4. */
  queueSize?: number;
  /** Whether `verify` also writes and deletes a small probe object (`s3:PutObject`, `s3:DeleteObject`). Default true. */
  verifyWrite?: boolean;
}

/** The S3 build-context store: the `ContextStore` contract plus where it writes. */
export interface S3ContextStore extends ContextStore {
  readonly name: 's3';
  readonly bucket: string;
  readonly prefix: string;
  readonly region: string;
  /** The object key `key` is stored under (`<prefix>/<key>`), after checking `key`. */
  objectKey(key: string): string;
}

function bucketArn(bucket: string): string {
  return `arn:aws:s3:::${bucket}`;
}

/**
 * An S3 bucket (and key prefix) where build contexts go for kaniko (`build-context-store: s3://bucket/prefix`).
 *
 * - `verify` sends `HeadBucket`: a 404 says the bucket does not exist, a 403 names `s3:ListBucket` on
 *   the bucket (the seed policy's `ListObjectsInBucket` statement), a 301 names the bucket's region. It
 *   then writes and deletes a small probe object under the prefix (`s3:PutObject`, `s3:DeleteObject`:
 *   the seed's `s3:*Object`), unless `verifyWrite` is false.
 * - `upload` streams the file in parts read into `queueSize` reused buffers of `partSizeMiB` (a
 *   multipart upload above one part, aborted on failure), so memory stays near `partSizeMiB × queueSize`
 *   whatever the file's size, and returns `s3://bucket/prefix/key`.
 * - `delete` removes an object this store wrote; a missing object is success.
 *
 * Errors are LaunchErrors of category `ContextUpload` naming the bucket and the permission; none holds
 * a credential. The AWS SDK is loaded on the first call.
 *
 * @example
 * const store = createS3ContextStore({ uri: 's3://my-bucket/launch', environment: createAwsEnvironment({ region: 'us-east-1' }) });
 * await store.verify({ logger });
 * const { uri } = await store.upload('/tmp/context.tgz', `${runId}.tgz`, { logger }); // s3://my-bucket/launch/<runId>.tgz
 */
export function createS3ContextStore(options: S3ContextStoreOptions): S3ContextStore {
  const opts = parseWith(optionsSchema, options, 'S3 context store options', Object.keys(optionsSchema.shape));
  const location: S3Location = parseS3Uri(opts.uri);
  if (opts.environment && opts.credentials) {
    throw new LaunchError({
      code: 'aws.invalid_options',
      stage: 'agent',
      message: 'S3 context store options: give credentials through the environment or directly, not both',
      hint: 'drop credentials, or drop environment',
    });
  }
  const environment =
    opts.environment ??
    createAwsEnvironment({ ...(opts.region ? { region: opts.region } : {}), ...(opts.credentials ? { credentials: opts.credentials } : {}) });
  const region = opts.region ?? environment.region;
  const partSize = (opts.partSizeMiB ?? 8) * MiB;
  const queueSize = opts.queueSize ?? 4;
  const { bucket, prefix } = location;
  const where = `s3://${bucket}${prefix ? `/${prefix}` : ''}`;

  let client: Promise<S3Client> | undefined;
  const getClient = () =>
    (client ??= loadS3().then(({ S3Client }) => {
      const config = environment.clientConfig('s3', region);
      return new S3Client({ ...config, ...(opts.endpoint ? { endpoint: opts.endpoint } : {}), forcePathStyle: opts.forcePathStyle ?? false });
    }));

  const objectKey = (key: string): string => {
    const problem = typeof key === 'string' ? keyProblemOf(key) : `is ${describeValue(key)}, not a string`;
    const full = prefix ? `${prefix}/${key}` : key;
    const fullProblem = problem ?? keyProblemOf(full);
    if (fullProblem) {
      throw new LaunchError({
        code: 'context_store.invalid_key',
        stage: 'build',
        category: 'ContextUpload',
        message: `S3 context store ${where}: key ${describeValue(key, 120)} ${fullProblem}`,
        hint: "use keys of letters, digits and -_.!*'()+=@,:/ (such as <run id>.tgz)",
      });
    }
    return full;
  };

  /** Maps an SDK failure of `action` on `resource` to a ContextUpload LaunchError. */
  const fail = (error: unknown, action: string, permission: string, resource: string): LaunchError => {
    if (LaunchError.isInstance(error)) return error;
    if (isAbortError(error)) return cancelledError('context_store.cancelled', `S3 ${action} on ${where}`, 'build');
    if (isNoCredentialsError(error))
      return noCredentialsError({ what: `S3 context store ${where}`, profile: environment.profile, stage: 'build', category: 'ContextUpload' }, error);
    const info = awsErrorInfo(error);
    const cause = safeCause(error);
    if (isNetworkError(error)) {
      return new LaunchError({
        code: 'context_store.unavailable',
        stage: 'build',
        category: 'ContextUpload',
        retryable: true,
        message: `S3 did not answer ${action} for ${where} (${info.networkCode ?? info.name})`,
        hint: `check the network path to S3 in ${region}${opts.endpoint ? ` (endpoint ${opts.endpoint})` : ''}`,
        cause,
      });
    }
    if (info.status === 404 || info.name === 'NoSuchBucket' || info.name === 'NotFound') {
      return new LaunchError({
        code: 'context_store.bucket_not_found',
        stage: 'build',
        category: 'ContextUpload',
        message: `S3 bucket "${bucket}" does not exist (${action} answered 404 in ${region})`,
        hint: `create the bucket, or fix build-context-store (found ${where})`,
        cause,
      });
    }
    if (
      info.status === 301 ||
      info.name === 'PermanentRedirect' ||
      info.name === 'AuthorizationHeaderMalformed' ||
      info.name === 'IllegalLocationConstraintException'
    ) {
      const other = (error as { $response?: { headers?: Record<string, string> } }).$response?.headers?.['x-amz-bucket-region'];
      return new LaunchError({
        code: 'context_store.wrong_region',
        stage: 'build',
        category: 'ContextUpload',
        message: `S3 bucket "${bucket}" is not in ${region}${other ? `: it is in ${other}` : ''} (${action} answered ${info.status ?? info.name})`,
        hint: other ? `set the store's region to ${other}` : "set the store's region to the bucket's region",
        cause,
      });
    }
    if (/InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|InvalidToken/.test(info.name)) {
      return new LaunchError({
        code: 'context_store.credentials_rejected',
        stage: 'build',
        category: 'ContextUpload',
        message: `S3 rejected the credentials for bucket "${bucket}": ${action} answered ${info.name}`,
        hint:
          info.name === 'ExpiredToken'
            ? 'the session token has expired: refresh the credentials'
            : 'check the access key and secret the agent uses (they are not shown here)',
        cause,
      });
    }
    if (info.status === 403 || /AccessDenied|Forbidden|AllAccessDisabled/.test(info.name)) {
      return new LaunchError({
        code: 'context_store.forbidden',
        stage: 'build',
        category: 'ContextUpload',
        message: `access denied to S3 bucket "${bucket}": ${action} answered 403`,
        hint: `grant ${permission} on ${resource}; a 403 also comes from a bucket in another account whose policy does not allow this principal${action === 'HeadBucket' ? ', or from credentials S3 does not accept (HeadBucket answers carry no reason)' : ''}`,
        cause,
      });
    }
    return new LaunchError({
      code: 'context_store.failed',
      stage: 'build',
      category: 'ContextUpload',
      retryable: info.status !== undefined && (info.status >= 500 || info.status === 429),
      message: `S3 ${action} on ${where} failed: ${info.name}${info.status ? ` (HTTP ${info.status})` : ''}`,
      hint: 'see the cause',
      cause,
    });
  };

  const objectsArn = `${bucketArn(bucket)}/${prefix ? `${prefix}/` : ''}*`;

  const store: S3ContextStore = {
    specificationVersion: 'v1',
    name: 's3',
    bucket,
    prefix,
    region,
    objectKey,

    async verify(ctx: CallContext): Promise<void> {
      const s3 = await getClient();
      const { HeadBucketCommand, PutObjectCommand, DeleteObjectCommand } = await loadS3();
      try {
        await s3.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: ctx.signal });
      } catch (error) {
        throw fail(error, 'HeadBucket', 's3:ListBucket', bucketArn(bucket));
      }
      if (opts.verifyWrite === false) return;
      const probe = objectKey(`.launch-verify-${randomBytes(6).toString('hex')}`);
      try {
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: probe, Body: 'launch verify\n' }), { abortSignal: ctx.signal });
      } catch (error) {
        throw fail(error, 'PutObject', 's3:PutObject', objectsArn);
      }
      try {
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: probe }), { abortSignal: ctx.signal });
      } catch (error) {
        throw fail(error, 'DeleteObject', 's3:DeleteObject', objectsArn);
      }
      ctx.logger.debug({ bucket, prefix, region }, 's3 context store: verified');
    },

    async upload(localPath: string, key: string, ctx: CallContext): Promise<{ uri: string }> {
      const fullKey = objectKey(key);
      const size = await contextArchiveSize(localPath, where);
      if (ctx.signal?.aborted) throw cancelledError('context_store.cancelled', `S3 upload to ${where}`, 'build');
      const s3 = await getClient();
      const started = Date.now();
      try {
        await uploadFileInParts({ client: s3, bucket, key: fullKey, path: localPath, size, partSize, queueSize, signal: ctx.signal });
      } catch (error) {
        if (ctx.signal?.aborted) throw cancelledError('context_store.cancelled', `S3 upload to ${where}`, 'build');
        throw fail(error, 'upload (PutObject / multipart)', 's3:PutObject', objectsArn);
      }
      const uri = `s3://${bucket}/${fullKey}`;
      ctx.logger.debug({ uri, bytes: size, ms: Date.now() - started }, 's3 context store: uploaded');
      return { uri };
    },

    async delete(uri: string, ctx: CallContext): Promise<void> {
      const parts = splitS3ObjectUri(uri);
      if (!parts || parts.bucket !== bucket || (prefix && !parts.key.startsWith(`${prefix}/`))) {
        throw new LaunchError({
          code: 'context_store.foreign_uri',
          stage: 'build',
          category: 'ContextUpload',
          message: `S3 context store ${where} will not delete ${describeValue(uri, 200)}: it is not an object under ${where}/`,
          hint: 'delete only the URIs this store returned from upload',
        });
      }
      const s3 = await getClient();
      const { DeleteObjectCommand } = await loadS3();
      try {
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: parts.key }), { abortSignal: ctx.signal });
      } catch (error) {
        const info = awsErrorInfo(error);
        if (info.name === 'NoSuchKey') return;
        throw fail(error, 'DeleteObject', 's3:DeleteObject', objectsArn);
      }
      ctx.logger.debug({ uri }, 's3 context store: deleted');
    },
  };
  return store;
}
