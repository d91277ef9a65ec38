import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@launch/core';
import { createGcpEnvironment } from '@launch/cloud-gcp';
import { dockerService, registryServices, serviceAvailable } from '@launch/testkit';
import { startGoogleTestServers, TEST_PROJECT, type GoogleTestServers } from '../../../packages/cloud-gcp/src/test-support/google.js';
import { startCloudFront, type CloudFront } from './cloud-front.js';
import { assertBuilt, sandbox } from './helpers.js';
import { expectBuildFailure, expectKanikoRoundTrip, expectStartupRefusal, startKanikoCluster, writeKanikoJob, type KanikoCluster } from './kaniko-e2e.js';

/**
 * `builder.type: kaniko` with a `gs://` context store through the binary, with the set-up guide's
 * GCP config (`environment.type: gcp`, `region: us-central1`). The binary is not told about any test
 * server: it reaches `https://storage.googleapis.com` through `HTTPS_PROXY` (a loopback CONNECT proxy
 * that ends TLS with a certificate from a test CA in `NODE_EXTRA_CA_CERTS` and forwards to the GCS
 * JSON API test server), and gets its token with a service-account key file (`GOOGLE_APPLICATION_CREDENTIALS`)
 * whose `token_uri` is the OAuth test server. The build stand-in reads the `gs://` object as kaniko
 * would (its own service account's token), builds on the real Docker engine and pushes to the real
 * registry; the run is a Kubernetes Job on the pushed image.
 */
const docker = dockerService();
const reg = registryServices();
const BUCKET = 'launch-contexts';
const DENIED_BUCKET = 'launch-contexts-denied';
const GCS_HOST = 'storage.googleapis.com';

describe.runIf(serviceAvailable('the test Docker engine and registries', !!docker && !!reg))('launch-agent with kaniko and a GCS context store', () => {
  let google: GoogleTestServers;
  let front: CloudFront;
  let cluster: KanikoCluster;
  let kanikoToken: () => Promise<string>;
  /** The agent's private key (a secret that must reach no output). */
  let privateKey: string;
  const objectsDuringBuild: Promise<string[]>[] = [];
  const repository = `e2e/gcs-kaniko-${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    assertBuilt();
    google = await startGoogleTestServers();
    google.gcs.addBucket(BUCKET);
    google.gcs.addBucket(DENIED_BUCKET, { deny: [google.key.email] });
    privateKey = (JSON.parse(await readFile(google.key.path, 'utf8')) as { private_key: string }).private_key;
    // kaniko's own identity (workload identity in a cluster): a second service account.
    const kanikoKey = google.oauth.addServiceAccount(`kaniko@${TEST_PROJECT}.iam.gserviceaccount.com`, { projectId: TEST_PROJECT });
    const kanikoEnv = createGcpEnvironment({ keyFile: kanikoKey.path, region: 'us-central1', env: {} });
    kanikoToken = async () => (await kanikoEnv.accessToken({ logger: silentLogger })).token;
    front = await startCloudFront([GCS_HOST], { [GCS_HOST]: { port: Number(new URL(google.gcs.endpoint).port), tls: 'terminate' } });
    cluster = await startKanikoCluster({
      socketPath: docker!.socketPath,
      registryHost: reg!.plain,
      repository,
      onBuild: () => objectsDuringBuild.push(Promise.resolve(google.gcs.objects(BUCKET))),
      // kaniko reads gs://bucket/object with the JSON API's media download.
      fetchContext: async (uri, _pod, signal) => {
        const m = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri);
        if (!m) return undefined;
        const res = await fetch(`${google.gcs.endpoint}/storage/v1/b/${m[1]}/o/${encodeURIComponent(m[2]!)}?alt=media`, {
          headers: { authorization: `Bearer ${await kanikoToken()}` },
          signal,
        });
        if (!res.ok || !res.body) throw new Error(`GET ${uri}: ${res.status} ${await res.text()}`);
        return Readable.fromWeb(res.body as never);
      },
    });
  });
  afterAll(async () => {
    await cluster?.close();
    await front?.close();
    await google?.close();
  });

  /** A sandbox whose environment is the agent's in a GKE pod with a key file, plus the loopback front. */
  async function gcpSandbox(keyPath = google.key.path) {
    const b = await sandbox({
      ...front.env,
      KUBECONFIG: cluster.kube.kubeconfigPath,
      LAUNCH_AGENT_NAME: 'gcs-kaniko-e2e',
      GOOGLE_APPLICATION_CREDENTIALS: keyPath,
      METADATA_SERVER_DETECTION: 'none',
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
    });
    b.env.CLOUDSDK_CONFIG = join(b.dir, 'gcloud');
    await mkdir(b.env.CLOUDSDK_CONFIG, { recursive: true });
    return b;
  }
  const gcpConfig = ['environment:', '  type: gcp', '  region: us-central1'];

  it('uploads the context to GCS, builds it in a Job, pushes, runs the pushed image, deletes the context; the second job skips the build', async () => {
    const b = await gcpSandbox();
    const files = await writeKanikoJob(b.dir, { destination: `${reg!.plain}/${repository}`, store: `gs://${BUCKET}/contexts`, extraConfig: gcpConfig });
    const uploadsBefore = google.gcs.count('POST upload');
    await expectKanikoRoundTrip({
      env: b.env,
      files,
      cluster,
      registryHost: reg!.plain,
      repository,
      storeLine: `context store: gs://${BUCKET}/contexts (Google Cloud Storage, from builder.build-context-store); credentials from Application Default Credentials`,
      contextUri: new RegExp(`^gs://${BUCKET}/contexts/.+\\.tgz$`),
      listObjects: async () => google.gcs.objects(BUCKET),
      objectsDuringBuild,
      secrets: [privateKey.split('\n')[1]!],
    });
    // One resumable upload (the first job), through the real host name; nothing else left the machine.
    expect(google.gcs.count('POST upload') - uploadsBefore).toBe(1);
    expect(google.gcs.openSessions()).toBe(0);
    expect(front.tunnelled).toContain(`${GCS_HOST}:443`);
    expect(front.refused).toEqual([]);
  });

  it('names an unknown bucket at stage build', async () => {
    const b = await gcpSandbox();
    const files = await writeKanikoJob(b.dir, {
      destination: `${reg!.plain}/${repository}-unknown`,
      store: 'gs://no-such-bucket-e2e/contexts',
      extraConfig: gcpConfig,
    });
    const { message } = await expectBuildFailure(b.env, files, [privateKey.split('\n')[1]!]);
    expect(message).toContain('GCS bucket "no-such-bucket-e2e" does not exist');
  });

  it('names the missing permission when the bucket denies the agent (403), at stage build', async () => {
    const b = await gcpSandbox();
    const files = await writeKanikoJob(b.dir, {
      destination: `${reg!.plain}/${repository}-denied`,
      store: `gs://${DENIED_BUCKET}/contexts`,
      extraConfig: gcpConfig,
    });
    const { message } = await expectBuildFailure(b.env, files, [privateKey.split('\n')[1]!]);
    expect(message).toContain(`access denied to GCS bucket "${DENIED_BUCKET}"`);
    expect(message).toContain('storage.objects.create');
    expect(google.gcs.objects(DENIED_BUCKET)).toEqual([]);
  });

  it('says the credentials were refused when the key was deleted (invalid_grant), at stage build, without the key', async () => {
    const gone = google.oauth.addServiceAccount(`deleted-key@${TEST_PROJECT}.iam.gserviceaccount.com`, { projectId: TEST_PROJECT });
    google.oauth.deleteKey(gone.keyId);
    const goneKey = (JSON.parse(await readFile(gone.path, 'utf8')) as { private_key: string }).private_key;
    const b = await gcpSandbox(gone.path);
    const files = await writeKanikoJob(b.dir, {
      destination: `${reg!.plain}/${repository}-deleted-key`,
      store: `gs://${BUCKET}/contexts`,
      extraConfig: gcpConfig,
    });
    const { message } = await expectBuildFailure(b.env, files, [goneKey.split('\n')[1]!]);
    expect(message).toContain(`Google refused an access token for GCS context store gs://${BUCKET}/contexts: invalid_grant`);
    expect(google.gcs.objects(BUCKET)).toEqual([]);
  });

  it('refuses a malformed gs:// URI at start-up (exit 2), naming the bucket and what is wrong', async () => {
    const b = await gcpSandbox();
    const files = await writeKanikoJob(b.dir, { destination: `${reg!.plain}/${repository}`, store: 'gs://Launch_Contexts/contexts', extraConfig: gcpConfig });
    const stderr = await expectStartupRefusal(b.env, files.cfg, [privateKey.split('\n')[1]!]);
    expect(stderr).toContain('"Launch_Contexts" has upper-case letters');
  });
});
