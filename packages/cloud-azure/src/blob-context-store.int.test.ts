import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { LaunchError, LaunchValidationError, silentLogger } from '@launch/core';
import { describeContextStore } from '@launch/testkit';
import { createAzureBlobContextStore, BLOB_ROLE, type AzureBlobContextStoreOptions } from './blob-context-store.js';
import { createAzureEnvironment } from './environment.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite, type RunningAzurite } from './test-support/azurite.js';
import { installLoopbackGuard } from '@launch/testkit';

const guard = installLoopbackGuard();
const ctx = () => ({ logger: silentLogger });
const CONTAINER = 'launch-contexts';

let azurite: RunningAzurite;
let admin: BlobServiceClient;
const started = (async () => {
  azurite = await startAzurite();
  admin = new BlobServiceClient(azurite.serviceUrl, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY));
  await admin.getContainerClient(CONTAINER).createIfNotExists();
  return azurite;
})();

afterAll(async () => {
  await azurite?.close();
  guard.restore();
  expect(guard.violations).toEqual([]);
});

function store(overrides: Partial<AzureBlobContextStoreOptions> = {}) {
  return createAzureBlobContextStore({ uri: `${azurite.serviceUrl}/${CONTAINER}/builds`, accountKey: AZURITE_KEY, maxTries: 1, ...overrides });
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

/** Reads a blob back by the URI upload returned, with the SDK and the dev account's key; null when missing. */
async function read(uri: string): Promise<Uint8Array | null> {
  const prefix = `${azurite.serviceUrl}/`;
  expect(uri.startsWith(prefix)).toBe(true);
  const [container, ...rest] = uri.slice(prefix.length).split('/');
  const blob = admin.getContainerClient(container!).getBlobClient(rest.join('/'));
  try {
    return await blob.downloadToBuffer();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return null;
    throw error;
  }
}

describeContextStore('azure blob (Azurite)', async () => {
  await started;
  return {
    store: store(),
    missingBucketStore: store({ uri: `${azurite.serviceUrl}/no-such-container/builds` }),
    missingBucketName: 'no-such-container',
    secrets: [AZURITE_KEY],
    read,
  };
});

describe('azure blob context store (Azurite)', () => {
  it('returns the blob URL kaniko reads, under the prefix', async () => {
    await started;
    const dir = mkdtempSync(join(tmpdir(), 'azblob-'));
    try {
      const path = join(dir, 'ctx.tgz');
      writeFileSync(path, 'context');
      const { uri } = await store().upload(path, 'run-1.tgz', ctx());
      expect(uri).toBe(`${azurite.serviceUrl}/${CONTAINER}/builds/run-1.tgz`);
      expect(Buffer.from((await read(uri))!).toString()).toBe('context');
      await store().delete(uri, ctx());
      expect(await read(uri)).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('uploads with small blocks as several blocks and the content survives', async () => {
    await started;
    const dir = mkdtempSync(join(tmpdir(), 'azblob-'));
    try {
      const path = join(dir, 'ctx.tgz');
      const content = Buffer.alloc(3 * 1024 * 1024 + 17);
      for (let i = 0; i < content.length; i++) content[i] = (i * 31) & 0xff;
      writeFileSync(path, content);
      const s = store({ blockSizeMiB: 1, concurrency: 2 });
      const { uri } = await s.upload(path, 'blocks.tgz', ctx());
      const blocks = await admin.getContainerClient(CONTAINER).getBlockBlobClient('builds/blocks.tgz').getBlockList('committed');
      expect(blocks.committedBlocks?.length).toBe(4);
      expect(Buffer.compare(Buffer.from((await read(uri))!), content)).toBe(0);
      await s.delete(uri, ctx());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a wrong account key is refused as rejected credentials, without the key', async () => {
    await started;
    const wrongKey = Buffer.alloc(64, 7).toString('base64');
    const error = await rejection(store({ accountKey: wrongKey }).verify(ctx()));
    expect(error.code).toBe('context_store.credentials_rejected');
    expect(error.category).toBe('ContextUpload');
    expect(error.message).toContain(AZURITE_ACCOUNT);
    expect(allText(error)).not.toContain(wrongKey);
  });

  it('a token credential that gets no token names the chain that was tried', async () => {
    await started;
    // Azurite accepts AAD tokens only over https; the credential fails before any request is sent.
    const unavailable = Object.assign(new Error('nothing configured'), { name: 'CredentialUnavailableError' });
    const credential = {
      getToken: async () => {
        throw Object.assign(new Error('none'), { name: 'AggregateAuthenticationError', errors: [unavailable] });
      },
    };
    const environment = createAzureEnvironment({ credential, credentialName: 'TestCredential' });
    const error = await rejection(
      store({ accountKey: undefined, environment, uri: `https://${AZURITE_ACCOUNT}.blob.core.windows.net/${CONTAINER}` }).verify(ctx()),
    );
    expect(error.code).toBe('azure.no_credentials');
    expect(error.category).toBe('ContextUpload');
    expect(error.message).toContain('TestCredential');
  });

  it('refuses to delete a URI outside its container and prefix', async () => {
    await started;
    const error = await rejection(store().delete(`${azurite.serviceUrl}/${CONTAINER}/other/x.tgz`, ctx()));
    expect(error.code).toBe('context_store.foreign_uri');
  });

  it('names a missing file, and a directory (which W&B could not upload either) must be packed first', async () => {
    await started;
    const dir = mkdtempSync(join(tmpdir(), 'azblob-'));
    try {
      expect((await rejection(store().upload(join(dir, 'nope.tgz'), 'x.tgz', ctx()))).message).toContain('no such file');
      expect((await rejection(store().upload(dir, 'x.tgz', ctx()))).message).toContain('not a regular file');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad options and URIs at the factory, naming the field and hiding the key', () => {
    const bad = (options: unknown) => {
      try {
        createAzureBlobContextStore(options as AzureBlobContextStoreOptions);
      } catch (error) {
        expect(LaunchError.isInstance(error)).toBe(true);
        return error as LaunchValidationError;
      }
      throw new Error('expected a refusal');
    };
    expect(bad({ uri: 's3://bucket/x' }).message).toContain('uri');
    expect(bad({ uri: 'https://acct.blob.core.windows.net' }).message).toContain('names no container');
    expect(bad({ uri: 'https://acct.blob.core.windows.net/Bad_Container' }).message).toContain('Bad_Container');
    expect(bad({ uri: 'http://acct.blob.core.windows.net/c1c' }).message).toContain('https:');
    expect(bad({ uri: 'https://acct.blob.core.windows.net/ccc?sv=1&sig=abc' }).message).toContain('SAS');
    expect(bad({ uri: 'https://evil.example.com/acct/ccc' }).message).toContain('not an Azure Blob endpoint');
    const keyError = bad({ uri: 'https://acct.blob.core.windows.net/ccc', accountKey: 'not a key!' });
    expect(keyError.message).toContain('accountKey');
    expect(keyError.message).not.toContain('not a key!');
    expect(bad({ uri: 'https://acct.blob.core.windows.net/ccc', acountKey: 'x' }).message).toContain('accountKey');
  });

  it('names the role to grant on a 403 AuthorizationPermissionMismatch, and the container on a 404', async () => {
    // Azurite does no RBAC, so a loopback server answers as Blob Storage does for an identity without the role.
    const answers: Record<string, [number, string]> = {
      '/devstoreaccount1/forbidden': [403, 'AuthorizationPermissionMismatch'],
      '/devstoreaccount1/gone': [404, 'ContainerNotFound'],
    };
    const server = createServer((req, res) => {
      const [status, code] = answers[new URL(req.url!, 'http://x').pathname] ?? [500, 'InternalError'];
      res.writeHead(status, { 'content-type': 'application/xml', 'x-ms-error-code': code, 'x-ms-request-id': 'r1' });
      res.end(
        `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>This request is not authorized to perform this operation using this permission.</Message></Error>`,
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/devstoreaccount1`;
    try {
      const forbidden = await rejection(store({ uri: `${base}/forbidden/x` }).verify(ctx()));
      expect(forbidden.code).toBe('context_store.forbidden');
      expect(forbidden.category).toBe('ContextUpload');
      expect(forbidden.message).toContain('"forbidden"');
      expect(forbidden.hint).toContain(BLOB_ROLE);
      expect(allText(forbidden)).not.toContain(AZURITE_KEY);
      const gone = await rejection(store({ uri: `${base}/gone` }).verify(ctx()));
      expect(gone.code).toBe('context_store.bucket_not_found');
      expect(gone.message).toContain('"gone"');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('azure blob context store without a server', () => {
  it('a closed port is a retryable unavailable error naming the account', async () => {
    const error = await rejection(
      createAzureBlobContextStore({ uri: `http://127.0.0.1:1/${AZURITE_ACCOUNT}/${CONTAINER}`, accountKey: AZURITE_KEY, maxTries: 1 }).verify(ctx()),
    );
    expect(error.code).toBe('context_store.unavailable');
    expect(error.retryable).toBe(true);
    expect(error.hint).toContain(AZURITE_ACCOUNT);
  });
});
