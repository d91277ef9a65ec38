import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerService, registryServices, serviceAvailable } from '@launch/testkit';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../../../packages/cloud-azure/src/test-support/azurite.js';
import { startAad, type RunningAad } from '../../../packages/cloud-azure/src/test-support/aad-server.js';
import { createTestJwtSigner } from '../../../packages/cloud-azure/src/test-support/jwt.js';
import { startCloudFront, startTlsForwarder, type CloudFront } from './cloud-front.js';
import { assertBuilt, cli, sandbox } from './helpers.js';
import {
  expectBuildFailure,
  expectCleanOutput,
  expectKanikoRoundTrip,
  expectStartupRefusal,
  podEnv,
  putSecret,
  startKanikoCluster,
  writeKanikoJob,
  type KanikoCluster,
} from './kaniko-e2e.js';

/**
 * `builder.type: kaniko` with an Azure Blob context store through the binary, with the set-up guide's
 * Azure config (`environment.type: azure`, `build-context-store: https://<account>.blob.core.windows.net/<container>`).
 * The binary is not told about any test server: `DefaultAzureCredential` takes the client secret from
 * `AZURE_TENANT_ID` / `AZURE_CLIENT_ID` / `AZURE_CLIENT_SECRET` and asks `login.microsoftonline.com`,
 * and the blob client talks to `devstoreaccount1.blob.core.windows.net`; both names reach loopback
 * servers through `HTTPS_PROXY` (a CONNECT proxy that tunnels only those names) with TLS checked
 * against a test CA in `NODE_EXTRA_CA_CERTS`. Behind them: the AAD test server, and Azurite over
 * HTTPS with `--oauth basic` (it checks the token's issuer, audience and lifetime, not its signature).
 * The build stand-in reads the blob as kaniko does, with the shared key from `AZURE_STORAGE_ACCESS_KEY`
 * (secret `azure-storage-access-key-<release>`, as the Helm chart's `azureStorageAccessKey` makes it and names it to the
 * agent in `LAUNCH_AZURE_STORAGE_KEY_SECRET`; W&B's fixed `azure-storage-access-key` is absent, so the name must be used).
 */
const docker = dockerService();
const reg = registryServices();
const CONTAINER = 'launch-contexts';
const BLOB_HOST = `${AZURITE_ACCOUNT}.blob.core.windows.net`;
const AAD_HOST = 'login.microsoftonline.com';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT_ID = '0b0f5b5e-6a0e-4d57-9f57-53a1c2f1e001';
const CLIENT_SECRET = `e2e~${randomBytes(12).toString('base64url')}`;
/** The chart's release-scoped secret (release `launch`). */
const AZURE_KEY_SECRET = 'azure-storage-access-key-launch';
const cloudAzure = resolve(dirname(fileURLToPath(import.meta.url)), '../../../packages/cloud-azure/package.json');

interface Azurite {
  port: number;
  close(): Promise<void>;
}

/** Azurite's blob service over HTTPS (the front's certificate) with `--oauth basic`, on a port the kernel picks. */
async function startAzuriteHttps(certPath: string, keyPath: string, timeoutMs = 60_000): Promise<Azurite> {
  const require = createRequire(cloudAzure);
  const bin = join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'blob', 'main.js');
  const location = mkdtempSync(join(tmpdir(), 'azurite-e2e-'));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      bin,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
      '--location',
      location,
      '--skipApiVersionCheck',
      '--disableTelemetry',
      '--cert',
      certPath,
      '--key',
      keyPath,
      '--oauth',
      'basic',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => fail(new Error(`azurite-blob did not start within ${timeoutMs} ms: ${output.slice(-2000)}`)), timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const m = /listens on https:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => fail(new Error(`azurite-blob exited with ${code}: ${output.slice(-2000)}`)));
  });
  return {
    port,
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(location, { recursive: true, force: true });
    },
  };
}

/** The part of `@azure/storage-blob` (resolved from @launch/cloud-azure, which depends on it) the test uses. */
interface BlobSdk {
  BlobServiceClient: new (
    url: string,
    credential: unknown,
  ) => {
    getContainerClient(name: string): {
      create(): Promise<unknown>;
      listBlobsFlat(): AsyncIterable<{ name: string }>;
      getBlobClient(name: string): {
        download(offset: number, count?: number, options?: { abortSignal?: AbortSignal }): Promise<{ readableStreamBody?: NodeJS.ReadableStream }>;
      };
    };
  };
  StorageSharedKeyCredential: new (account: string, key: string) => unknown;
}

describe.runIf(serviceAvailable('the test Docker engine and registries', !!docker && !!reg))('launch-agent with kaniko and an Azure Blob context store', () => {
  let front: CloudFront;
  let azurite: Azurite;
  let aad: RunningAad;
  let plain: { port: number; close(): Promise<void> };
  let cluster: KanikoCluster;
  let sdk: BlobSdk;
  /** Azurite's account through the plain-TCP forwarder, with the shared key (the test's own view). */
  const service = () =>
    new sdk.BlobServiceClient(`http://127.0.0.1:${plain.port}/${AZURITE_ACCOUNT}`, new sdk.StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY));
  const blobs = async (container: string): Promise<string[]> => {
    const out: string[] = [];
    for await (const b of service().getContainerClient(container).listBlobsFlat()) out.push(b.name);
    return out;
  };
  const objectsDuringBuild: Promise<string[]>[] = [];
  const repository = `e2e/azure-kaniko-${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    assertBuilt();
    sdk = (await import(createRequire(cloudAzure).resolve('@azure/storage-blob'))) as BlobSdk;
    front = await startCloudFront([BLOB_HOST, AAD_HOST]);
    azurite = await startAzuriteHttps(front.tls.certPath, front.tls.keyPath);
    aad = await startAad({ tls: front.tls, signer: createTestJwtSigner(), apps: [{ tenantId: TENANT, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }] });
    front.route(BLOB_HOST, { port: azurite.port });
    front.route(AAD_HOST, { port: Number(new URL(aad.authorityHost).port) });
    plain = await startTlsForwarder(azurite.port, front.tls.ca);
    await service().getContainerClient(CONTAINER).create();
    cluster = await startKanikoCluster({
      socketPath: docker!.socketPath,
      registryHost: reg!.plain,
      repository,
      onBuild: () => objectsDuringBuild.push(blobs(CONTAINER)),
      // kaniko reads https://<account>.blob.core.windows.net/<container>/<blob> with the account key in AZURE_STORAGE_ACCESS_KEY.
      fetchContext: async (uri, pod, signal) => {
        const m = /^https:\/\/([^.]+)\.blob\.core\.windows\.net\/([^/]+)\/(.+)$/.exec(uri);
        if (!m) return undefined;
        const key = podEnv(cluster.kube, pod, 'AZURE_STORAGE_ACCESS_KEY');
        if (!key) throw new Error('AZURE_STORAGE_ACCESS_KEY is not set in the build pod');
        const client = new sdk.BlobServiceClient(`http://127.0.0.1:${plain.port}/${m[1]}`, new sdk.StorageSharedKeyCredential(m[1]!, key));
        const download = await client.getContainerClient(m[2]!).getBlobClient(decodeURIComponent(m[3]!)).download(0, undefined, { abortSignal: signal });
        if (!download.readableStreamBody) throw new Error(`GET ${uri}: no body`);
        return download.readableStreamBody as Readable;
      },
    });
    // What the Helm chart's azureStorageAccessKey creates in the agent's namespace.
    await putSecret(cluster.kube, 'wandb', AZURE_KEY_SECRET, { password: AZURITE_KEY });
  });
  afterAll(async () => {
    await cluster?.close();
    await plain?.close();
    await aad?.close();
    await azurite?.close();
    await front?.close();
  });

  /** A sandbox with the agent's service-principal variables (as a pod with a client secret has them) and the loopback front. */
  async function azureSandbox(secret = CLIENT_SECRET) {
    return sandbox({
      ...front.env,
      KUBECONFIG: cluster.kube.kubeconfigPath,
      LAUNCH_AGENT_NAME: 'azure-kaniko-e2e',
      LAUNCH_AZURE_STORAGE_KEY_SECRET: AZURE_KEY_SECRET,
      AZURE_TENANT_ID: TENANT,
      AZURE_CLIENT_ID: CLIENT_ID,
      AZURE_CLIENT_SECRET: secret,
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
    });
  }
  const azureConfig = ['environment:', '  type: azure'];
  const secrets = [CLIENT_SECRET, AZURITE_KEY];

  it('uploads the context to Blob Storage, builds it in a Job, pushes, runs the pushed image, deletes the blob; the second job skips the build', async () => {
    const b = await azureSandbox();
    const store = `https://${BLOB_HOST}/${CONTAINER}/contexts`;
    const files = await writeKanikoJob(b.dir, { destination: `${reg!.plain}/${repository}`, store, extraConfig: azureConfig });
    const issuedBefore = aad.issued.length;
    await expectKanikoRoundTrip({
      env: b.env,
      files,
      cluster,
      registryHost: reg!.plain,
      repository,
      storeLine: `context store: ${store} (Azure Blob Storage, from builder.build-context-store); credentials from DefaultAzureCredential`,
      contextUri: new RegExp(`^https://${BLOB_HOST.replace(/\./g, '\\.')}/${CONTAINER}/contexts/.+\\.tgz$`),
      listObjects: () => blobs(CONTAINER),
      objectsDuringBuild,
      secrets,
    });
    // The agent's token came from the AAD test server, for Storage; the build pod read the blob with the account key.
    expect(aad.issued.slice(issuedBefore)).toContainEqual({ clientId: CLIENT_ID, scope: 'https://storage.azure.com/.default' });
    expect(cluster.kube.listObjects('/api/v1/namespaces/wandb/secrets').map((s) => (s as { metadata: { name: string } }).metadata.name)).toContain(
      AZURE_KEY_SECRET,
    );
    expect(front.tunnelled).toContain(`${BLOB_HOST}:443`);
    expect(front.refused).toEqual([]);
  });

  it('names an unknown container at stage build', async () => {
    const b = await azureSandbox();
    const files = await writeKanikoJob(b.dir, {
      destination: `${reg!.plain}/${repository}-unknown`,
      store: `https://${BLOB_HOST}/no-such-container`,
      extraConfig: azureConfig,
    });
    const { message } = await expectBuildFailure(b.env, files, secrets);
    expect(message).toContain(`Azure Blob container "no-such-container" does not exist in storage account "${AZURITE_ACCOUNT}"`);
  });

  it('says the credential was refused (wrong client secret, AADSTS7000215) at stage build, without the secret', async () => {
    const wrong = `wrong~${randomBytes(12).toString('base64url')}`;
    const b = await azureSandbox(wrong);
    const files = await writeKanikoJob(b.dir, {
      destination: `${reg!.plain}/${repository}-forbidden`,
      store: `https://${BLOB_HOST}/${CONTAINER}`,
      extraConfig: azureConfig,
    });
    const { message } = await expectBuildFailure(b.env, files, [...secrets, wrong]);
    expect(message).toContain(
      `Azure Blob context store https://${BLOB_HOST}/${CONTAINER}: could not get an Azure AD token for https://storage.azure.com/.default (AuthenticationError`,
    );
    expect(await blobs(CONTAINER)).toEqual([]);
  });

  it('refuses a malformed store URI (a bad container name) at start-up (exit 2), naming it', async () => {
    const b = await azureSandbox();
    const bad = await writeKanikoJob(b.dir, {
      destination: `${reg!.plain}/${repository}`,
      store: `https://${BLOB_HOST}/Launch_Contexts`,
      extraConfig: azureConfig,
    });
    const stderr = await expectStartupRefusal(b.env, bad.cfg, secrets);
    expect(stderr).toContain('Launch_Contexts');
  });

  it('refuses a store URI carrying a SAS token at start-up (exit 2), and neither run nor config check shows its signature', async () => {
    const b = await azureSandbox();
    const sig = randomBytes(24).toString('base64url');
    const sas = await writeKanikoJob(b.dir, {
      destination: `${reg!.plain}/${repository}`,
      store: `https://${BLOB_HOST}/${CONTAINER}?sv=2022-11-02&sp=rw&sig=${sig}`,
      extraConfig: azureConfig,
    });
    const stderr = await expectStartupRefusal(b.env, sas.cfg, [...secrets, sig]);
    expect(stderr).toContain('must not carry a query');
    const check = await cli(['config', 'check', '-c', sas.cfg], b.env);
    expectCleanOutput(check.stdout + check.stderr, [sig]);
  });
});
