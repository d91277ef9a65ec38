import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { LaunchError, LaunchValidationError, silentLogger } from '@launch/core';
import { describeContextStore } from '@launch/testkit';
import { createAwsEnvironment } from './environment.js';
import { createS3ContextStore, type S3ContextStoreOptions } from './s3-context-store.js';
import { installLoopbackGuard } from '@launch/testkit';
import { S3RVER_CREDENTIALS, startS3rver, type RunningS3rver } from './test-support/s3rver.js';

const guard = installLoopbackGuard();
const ctx = () => ({ logger: silentLogger });
const BUCKET = 'launch-contexts';

let s3rver: RunningS3rver;
const started = (async () => {
  s3rver = await startS3rver([BUCKET, 'other-bucket']);
  return s3rver;
})();

afterAll(async () => {
  await s3rver?.close();
  guard.restore();
  expect(guard.violations).toEqual([]);
});

function store(overrides: Partial<S3ContextStoreOptions> = {}) {
  return createS3ContextStore({
    uri: `s3://${BUCKET}/builds`,
    region: 'us-east-1',
    credentials: { ...S3RVER_CREDENTIALS },
    endpoint: s3rver.endpoint,
    forcePathStyle: true,
    ...overrides,
  });
}

async function rejection(promise: Promise<unknown>): Promise<LaunchError> {
  try {
    await promise;
  } catch (error) {
    expect(LaunchError.isInstance(error), String(error)).toBe(true);
    return error as LaunchError;
  }
  throw new Error('expected the call to fail');
}

function allText(error: LaunchError): string {
  let text = `${error.message}\n${error.hint}\n${error.stack}`;
  let cause = error.cause as Error | undefined;
  for (let i = 0; cause && i < 5; i++, cause = cause.cause as Error | undefined) text += `\n${cause.message}\n${cause.stack}`;
  return text;
}

describeContextStore('s3 (s3rver)', async () => {
  await started;
  const reader = new S3Client({ region: 'us-east-1', endpoint: s3rver.endpoint, forcePathStyle: true, credentials: { ...S3RVER_CREDENTIALS } });
  return {
    store: store(),
    missingBucketStore: store({ uri: 's3://no-such-bucket-here/builds' }),
    missingBucketName: 'no-such-bucket-here',
    secrets: [],
    async read(uri: string) {
      const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
      if (!m) throw new Error(`not an s3 uri: ${uri}`);
      try {
        const out = await reader.send(new GetObjectCommand({ Bucket: m[1], Key: m[2] }));
        return out.Body as NodeJS.ReadableStream;
      } catch (error) {
        if ((error as { name?: string }).name === 'NoSuchKey') return null;
        throw error;
      }
    },
    cleanup: () => reader.destroy(),
  };
});

describe('S3 context store against s3rver', () => {
  beforeAll(async () => {
    await started;
  });

  it('returns s3://bucket/prefix/key for kaniko', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's3-store-'));
    try {
      writeFileSync(join(dir, 'ctx.tgz'), 'x');
      const { uri } = await store().upload(join(dir, 'ctx.tgz'), 'run-abc.tgz', ctx());
      expect(uri).toBe(`s3://${BUCKET}/builds/run-abc.tgz`);
      const rootStore = store({ uri: `s3://${BUCKET}` });
      expect((await rootStore.upload(join(dir, 'ctx.tgz'), 'run-abc.tgz', ctx())).uri).toBe(`s3://${BUCKET}/run-abc.tgz`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('verify on a missing bucket: 404, naming the bucket and the config key', async () => {
    const error = await rejection(store({ uri: 's3://missing-bucket-x/p' }).verify(ctx()));
    expect(error.code).toBe('context_store.bucket_not_found');
    expect(error.category).toBe('ContextUpload');
    expect(error.message).toBe('S3 bucket "missing-bucket-x" does not exist (HeadBucket answered 404 in us-east-1)');
    expect(error.hint).toContain('s3://missing-bucket-x/p');
  });

  it('verify with credentials s3rver refuses: 403, naming s3:ListBucket on the bucket, and no secret anywhere', async () => {
    const secret = `wrong-secret-${randomBytes(8).toString('hex')}`;
    // s3rver checks the key id (not SigV4 signatures): an unknown id gets 403, as a denied HeadBucket does on S3.
    const error = await rejection(store({ credentials: { accessKeyId: 'LAUNCHTESTKEY', secretAccessKey: secret } }).verify(ctx()));
    expect(error.code).toBe('context_store.forbidden');
    expect(error.category).toBe('ContextUpload');
    expect(error.message).toBe(`access denied to S3 bucket "${BUCKET}": HeadBucket answered 403`);
    expect(error.hint).toContain(`s3:ListBucket on arn:aws:s3:::${BUCKET}`);
    expect(allText(error)).not.toContain(secret);
  });

  it('an upload with an unknown access key fails as rejected credentials (ContextUpload), without the secret', async () => {
    const secret = `wrong-secret-${randomBytes(8).toString('hex')}`;
    const dir = mkdtempSync(join(tmpdir(), 's3-store-'));
    try {
      writeFileSync(join(dir, 'ctx.tgz'), 'x');
      const error = await rejection(
        store({ credentials: { accessKeyId: 'LAUNCHTESTKEY', secretAccessKey: secret } }).upload(join(dir, 'ctx.tgz'), 'k.tgz', ctx()),
      );
      expect(error.category).toBe('ContextUpload');
      expect(error.code).toBe('context_store.credentials_rejected');
      expect(error.message).toBe(`S3 rejected the credentials for bucket "${BUCKET}": upload (PutObject / multipart) answered InvalidAccessKeyId`);
      expect(allText(error)).not.toContain(secret);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('verify writes and deletes a probe object, leaving nothing behind', async () => {
    await store({ uri: `s3://other-bucket/probe` }).verify(ctx());
    const objects = readdirSync(join(s3rver.directory, 'other-bucket'), { recursive: true }).map(String);
    expect(objects.filter((f) => f.includes('launch-verify'))).toEqual([]);
  });

  it('refuses to delete an object outside its bucket and prefix', async () => {
    for (const uri of [`s3://other-bucket/builds/x.tgz`, `s3://${BUCKET}/elsewhere/x.tgz`, 'gs://b/x', 'nonsense']) {
      const error = await rejection(store().delete!(uri, ctx()));
      expect(error.code).toBe('context_store.foreign_uri');
      expect(error.message).toContain(uri);
    }
  });

  it('names a file that does not exist', async () => {
    const error = await rejection(store().upload('/nonexistent/ctx.tgz', 'k.tgz', ctx()));
    expect(error.code).toBe('context_store.no_file');
    expect(error.message).toBe('cannot upload "/nonexistent/ctx.tgz" to s3://launch-contexts/builds: no such file');
  });

  it('an aborted upload stops with a cancelled error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's3-store-'));
    try {
      writeFileSync(join(dir, 'ctx.tgz'), Buffer.alloc(12 * 1024 * 1024, 7));
      const controller = new AbortController();
      controller.abort();
      const error = await rejection(store({ partSizeMiB: 5 }).upload(join(dir, 'ctx.tgz'), 'aborted.tgz', { logger: silentLogger, signal: controller.signal }));
      expect(error.code).toBe('context_store.cancelled');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('S3 context store options', () => {
  const base = { region: 'us-east-1', credentials: S3RVER_CREDENTIALS };
  const invalid = (options: unknown): LaunchValidationError => {
    try {
      createS3ContextStore(options as S3ContextStoreOptions);
    } catch (error) {
      expect(error).toBeInstanceOf(LaunchValidationError);
      return error as LaunchValidationError;
    }
    throw new Error('expected the factory to refuse the options');
  };

  it('refuses a uri that is not s3://bucket/prefix, naming what was found', () => {
    expect(invalid({ ...base, uri: 'gs://bucket/p' }).message).toContain('expected s3://<bucket>/<prefix>, found "gs://bucket/p"');
    expect(invalid({ ...base, uri: 's3://' }).message).toContain('names no bucket');
    expect(invalid({ ...base, uri: 's3://My_Bucket/p' }).message).toContain('bucket "My_Bucket" has upper-case letters or underscores');
    expect(invalid({ ...base, uri: 's3://ab/p' }).message).toContain('is 2 characters long');
    expect(invalid({ ...base, uri: 's3://192.168.1.1/p' }).message).toContain('formatted as an IP address');
    expect(invalid({ ...base, uri: 's3://bucket/a/../b' }).message).toContain('"." or ".." path segment');
  });

  it('refuses unknown keys and bad values, naming the field, and never echoes credentials', () => {
    expect(invalid({ ...base, uri: 's3://bucket/p', forcePathstyle: true }).message).toContain('unknown key "forcePathstyle" (did you mean "forcePathStyle"?)');
    expect(invalid({ ...base, uri: 's3://bucket/p', partSizeMiB: 1 }).issues[0]!.path).toBe('partSizeMiB');
    expect(invalid({ ...base, uri: 's3://bucket/p', region: 'mars' }).message).toContain('region');
    const e = invalid({ uri: 's3://bucket/p', region: 'us-east-1', credentials: 'AKIASECRETSECRET' });
    expect(e.message).not.toContain('AKIASECRETSECRET');
  });

  it('without a region anywhere, start-up fails naming where it looked', () => {
    const error = (() => {
      try {
        createAwsEnvironment({ env: { AWS_CONFIG_FILE: '/nonexistent/config' } });
      } catch (e) {
        return e as LaunchValidationError;
      }
      throw new Error('expected a failure');
    })();
    expect(error.message).toContain('no region: set environment.region in the config, AWS_REGION, or region in profile "default" of /nonexistent/config');
  });
});

it('the package root loads no AWS SDK module until a factory makes a call', () => {
  const dir = new URL('.', import.meta.url).pathname;
  const sources = readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.startsWith('test-support'));
  expect(sources).toContain('sdk.ts');
  for (const file of sources) {
    const text = readFileSync(join(dir, file), 'utf8');
    // Only `import type` (erased) and import() may name the SDK.
    const staticImports = [...text.matchAll(/^import\s+(?!type\b)[^;]*from\s+'(@aws-sdk\/[^']+|@smithy\/[^']+)'/gm)].map((m) => `${file}: ${m[1]}`);
    expect(staticImports).toEqual([]);
  }
});
