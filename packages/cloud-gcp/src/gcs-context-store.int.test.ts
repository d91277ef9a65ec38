import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LaunchError, LaunchValidationError, silentLogger } from '@launch/core';
import { describeContextStore } from '@launch/testkit';
import { createGcpEnvironment, type GcpEnvironment } from './environment.js';
import { createGcsContextStore, type GcsContextStoreOptions } from './gcs-context-store.js';
import { installLoopbackGuard } from '@launch/testkit';
import { isolateGoogleEnv, startGoogleTestServers, TEST_ACCOUNT, TEST_PROJECT, type GoogleTestServers } from './test-support/google.js';

const guard = installLoopbackGuard();
const ctx = () => ({ logger: silentLogger });
const BUCKET = 'launch-contexts';
const DENIED = 'launch-denied';
const emptyDir = mkdtempSync(join(tmpdir(), 'gcp-empty-'));

let servers: GoogleTestServers;
let gcp: GcpEnvironment;
let restoreEnv: () => void = () => {};
const started = (async () => {
  servers = await startGoogleTestServers();
  restoreEnv = isolateGoogleEnv(servers.key.path, emptyDir);
  servers.gcs.addBucket(BUCKET);
  servers.gcs.addBucket(DENIED, { deny: [TEST_ACCOUNT] });
  gcp = createGcpEnvironment({ region: 'us-central1' });
})();

afterAll(async () => {
  await servers?.close();
  restoreEnv();
  rmSync(emptyDir, { recursive: true, force: true });
  guard.restore();
  expect(guard.violations).toEqual([]);
});

function store(overrides: Partial<GcsContextStoreOptions> = {}) {
  return createGcsContextStore({ uri: `gs://${BUCKET}/builds`, environment: gcp, apiEndpoint: servers.gcs.endpoint, chunkSizeMiB: 1, ...overrides });
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

/** A line of the key file's private key, which no error may contain. */
function keyLine(path: string): string {
  return (JSON.parse(readFileSync(path, 'utf8')) as { private_key: string }).private_key.split('\n')[1]!;
}

/** Reads an object back through the JSON API (`alt=media`) with a token of the agent's account. */
async function read(uri: string): Promise<NodeJS.ReadableStream | null> {
  const m = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m) throw new Error(`not a gs uri: ${uri}`);
  const { token } = await gcp.accessToken(ctx());
  const response = await fetch(`${servers.gcs.endpoint}/storage/v1/b/${m[1]}/o/${encodeURIComponent(m[2]!)}?alt=media`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (response.status === 404) return null;
  if (!response.ok || !response.body) throw new Error(`read ${uri}: HTTP ${response.status}`);
  return Readable.fromWeb(response.body as never);
}

describeContextStore('gcs (JSON API test server)', async () => {
  await started;
  return {
    store: store(),
    missingBucketStore: store({ uri: 'gs://no-such-bucket-here/builds' }),
    missingBucketName: 'no-such-bucket-here',
    secrets: [keyLine(servers.key.path)],
    read,
  };
});

describe('GCS context store against the test server', () => {
  beforeAll(async () => {
    await started;
  });

  it('returns gs://bucket/prefix/key for kaniko, and uploads in 308-acknowledged chunks', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gcs-store-'));
    try {
      writeFileSync(join(dir, 'ctx.tgz'), Buffer.alloc(2.5 * 1024 * 1024, 3));
      const chunksBefore = servers.gcs.count('PUT chunk');
      const { uri } = await store().upload(join(dir, 'ctx.tgz'), 'run-abc.tgz', ctx());
      expect(uri).toBe(`gs://${BUCKET}/builds/run-abc.tgz`);
      // 1 MiB chunks, each answered 308 until the last.
      expect(servers.gcs.count('PUT chunk') - chunksBefore).toBeGreaterThanOrEqual(3);
      expect(servers.gcs.openSessions()).toBe(0);
      const rootStore = store({ uri: `gs://${BUCKET}` });
      expect((await rootStore.upload(join(dir, 'ctx.tgz'), 'run-abc.tgz', ctx())).uri).toBe(`gs://${BUCKET}/run-abc.tgz`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('verify on a missing bucket: 404, naming the bucket and the config value', async () => {
    const error = await rejection(store({ uri: 'gs://missing-bucket-x/p' }).verify(ctx()));
    expect(error.code).toBe('context_store.bucket_not_found');
    expect(error.category).toBe('ContextUpload');
    expect(error.message).toBe('GCS bucket "missing-bucket-x" does not exist (get bucket answered 404)');
    expect(error.hint).toContain('gs://missing-bucket-x/p');
  });

  it("verify on a bucket the account may not use: 403, naming the seed's four permissions", async () => {
    const error = await rejection(store({ uri: `gs://${DENIED}/p` }).verify(ctx()));
    expect(error.code).toBe('context_store.forbidden');
    expect(error.category).toBe('ContextUpload');
    expect(error.message).toBe(`access denied to GCS bucket "${DENIED}": get bucket answered 403 (needs storage.buckets.get)`);
    expect(error.hint).toContain(`storage.buckets.get, storage.objects.create, storage.objects.delete, storage.objects.get on gs://${DENIED}`);
  });

  it('verify writes and deletes a probe object, leaving nothing behind', async () => {
    const before = servers.gcs.count('DELETE object');
    await store({ uri: `gs://${BUCKET}/probe` }).verify(ctx());
    expect(servers.gcs.count('DELETE object') - before).toBe(1);
    expect(servers.gcs.objects(BUCKET).filter((n) => n.includes('launch-verify'))).toEqual([]);
  });

  it('a deleted service-account key fails the upload as rejected credentials, without the key or a token', async () => {
    const key = servers.oauth.addServiceAccount('doomed@launch-test-project.iam.gserviceaccount.com', { projectId: TEST_PROJECT });
    servers.oauth.deleteKey(key.keyId);
    const doomed = createGcpEnvironment({ region: 'us-central1', keyFile: key.path });
    const dir = mkdtempSync(join(tmpdir(), 'gcs-store-'));
    try {
      writeFileSync(join(dir, 'ctx.tgz'), 'x');
      const error = await rejection(store({ environment: doomed }).upload(join(dir, 'ctx.tgz'), 'k.tgz', ctx()));
      expect(error.category).toBe('ContextUpload');
      expect(error.code).toBe('gcp.credentials_rejected');
      expect(error.message).toContain(`Google refused an access token`);
      expect(error.message).toContain('invalid_grant');
      const pem = keyLine(key.path);
      expect(allText(error)).not.toContain(pem);
      expect(allText(error)).not.toMatch(/ya29\./);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to delete an object outside its bucket and prefix', async () => {
    for (const uri of [`gs://other-bucket/builds/x.tgz`, `gs://${BUCKET}/elsewhere/x.tgz`, 's3://b/x', 'nonsense']) {
      const error = await rejection(store().delete!(uri, ctx()));
      expect(error.code).toBe('context_store.foreign_uri');
      expect(error.message).toContain(uri);
    }
  });

  it('names a file that does not exist', async () => {
    const error = await rejection(store().upload('/nonexistent/ctx.tgz', 'k.tgz', ctx()));
    expect(error.code).toBe('context_store.no_file');
    expect(error.message).toBe(`cannot upload "/nonexistent/ctx.tgz" to gs://${BUCKET}/builds: no such file`);
  });

  it('an aborted upload stops with a cancelled error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gcs-store-'));
    try {
      writeFileSync(join(dir, 'ctx.tgz'), Buffer.alloc(3 * 1024 * 1024, 7));
      const controller = new AbortController();
      controller.abort();
      const error = await rejection(store().upload(join(dir, 'ctx.tgz'), 'aborted.tgz', { logger: silentLogger, signal: controller.signal }));
      expect(error.code).toBe('context_store.cancelled');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('GCS context store options', () => {
  beforeAll(async () => {
    await started;
  });
  const invalid = (options: unknown): LaunchValidationError => {
    try {
      createGcsContextStore(options as GcsContextStoreOptions);
    } catch (error) {
      expect(error).toBeInstanceOf(LaunchValidationError);
      return error as LaunchValidationError;
    }
    throw new Error('expected the factory to refuse the options');
  };

  it('refuses a uri that is not gs://bucket/prefix, naming what was found', () => {
    expect(invalid({ environment: gcp, uri: 's3://bucket/p' }).message).toContain('expected gs://<bucket>/<prefix>, found "s3://bucket/p"');
    expect(invalid({ environment: gcp, uri: 'gs://' }).message).toContain('names no bucket');
    expect(invalid({ environment: gcp, uri: 'gs://My-Bucket/p' }).message).toContain('bucket "My-Bucket" has upper-case letters');
    expect(invalid({ environment: gcp, uri: 'gs://ab/p' }).message).toContain('is 2 characters long');
    expect(invalid({ environment: gcp, uri: 'gs://google-things/p' }).message).toContain('reserved by GCS');
    expect(invalid({ environment: gcp, uri: 'gs://bucket/a/../b' }).message).toContain('"." or ".." path segment');
  });

  it('refuses unknown keys and a missing environment, naming the field', () => {
    expect(invalid({ environment: gcp, uri: 'gs://bucket/p', apiEndPoint: 'http://x' }).message).toContain(
      'unknown key "apiEndPoint" (did you mean "apiEndpoint"?)',
    );
    expect(invalid({ uri: 'gs://bucket/p' }).issues[0]!.path).toBe('environment');
    expect(invalid({ environment: gcp, uri: 'gs://bucket/p', chunkSizeMiB: 0 }).issues[0]!.path).toBe('chunkSizeMiB');
  });
});

it('the package loads no Google library until a factory makes a call', () => {
  const dir = new URL('.', import.meta.url).pathname;
  const sources = readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.startsWith('test-support'));
  expect(sources).toContain('sdk.ts');
  for (const file of sources) {
    const text = readFileSync(join(dir, file), 'utf8');
    // Only `import type` (erased) and import() may name the libraries.
    const staticImports = [...text.matchAll(/^import\s+(?!type\b)[^;]*from\s+'(@google-cloud\/[^']+|google-auth-library|gaxios|gcp-metadata)'/gm)].map(
      (m) => `${file}: ${m[1]}`,
    );
    expect(staticImports).toEqual([]);
  }
});
