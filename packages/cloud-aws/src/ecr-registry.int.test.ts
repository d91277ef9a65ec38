import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateRepositoryCommand, ECRClient, PutImageCommand } from '@aws-sdk/client-ecr';
import { LaunchError, silentLogger } from '@launch/core';
import { selectRegistry } from '@launch/registries';
import { describeRegistry, serviceAvailable } from '@launch/testkit';
import { createAwsEnvironment, type AwsEnvironment } from './environment.js';
import { createEcrRegistry, ecrRegistryFactory } from './ecr-registry.js';
import { startCountingProxy, type CountingProxy } from './test-support/counting-proxy.js';
import { installLoopbackGuard } from '@launch/testkit';
import { motoInstalled, startMoto, type RunningMoto } from './test-support/moto.js';

// Moto's fixed identity: any credentials are accepted and belong to this account.
const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const HOST = `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`;
const CREDENTIALS = { accessKeyId: 'AKIDLAUNCHTEST', secretAccessKey: 'launch-test-secret-not-real' };
const ctx = () => ({ logger: silentLogger });

// Skipped with a note where moto is not installed; a failure under CI (scripts/ci/install-moto.sh installs it).
const available = serviceAvailable('moto (AWS API server for the ECR and STS tests; scripts/ci/install-moto.sh)', motoInstalled());

const guard = installLoopbackGuard();
let moto: RunningMoto;
let proxy: CountingProxy;
let aws: AwsEnvironment;
let admin: ECRClient;

async function pushManifest(repository: string, tag: string): Promise<void> {
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: 2, digest: `sha256:${'1'.repeat(64)}` },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: 3, digest: `sha256:${tag.length.toString(16).padStart(64, '2')}` }],
  };
  await admin.send(new PutImageCommand({ repositoryName: repository, imageTag: tag, imageManifest: JSON.stringify(manifest) }));
}

const setUp = (async () => {
  if (!available) return;
  moto = await startMoto();
  proxy = await startCountingProxy(moto.endpoint);
  aws = createAwsEnvironment({ region: REGION, credentials: CREDENTIALS, endpoints: { sts: proxy.endpoint, ecr: proxy.endpoint } });
  admin = new ECRClient({ region: REGION, endpoint: moto.endpoint, credentials: { ...CREDENTIALS } });
  await admin.send(new CreateRepositoryCommand({ repositoryName: 'launch' }));
  await admin.send(new CreateRepositoryCommand({ repositoryName: 'team/conformance' }));
})();

afterAll(async () => {
  admin?.destroy();
  await proxy?.close();
  await moto?.close();
  guard.restore();
  expect(guard.violations).toEqual([]);
});

describe.skipIf(!available)('AWS environment against moto (STS)', () => {
  beforeAll(() => setUp);

  it('verify names the account and partition from GetCallerIdentity', async () => {
    const identity = await aws.verify(ctx());
    expect(identity).toMatchObject({ account: ACCOUNT, partition: 'aws' });
    expect(identity.arn).toMatch(/^arn:aws:(sts|iam)::123456789012:/);
  });
});

describe.skipIf(!available)('ECR registry against moto', () => {
  beforeAll(() => setUp);

  it('credentials() decodes base64 AWS:<password> from GetAuthorizationToken and caches it until expiresAt minus the margin', async () => {
    // Moto's tokens expire at 2015-01-01T00:00:00Z: a clock before that lets the cache be observed.
    let now = Date.parse('2014-12-31T23:00:00Z');
    const registry = createEcrRegistry({ uri: `${HOST}/launch`, environment: aws, refreshMarginMs: 10 * 60_000, now: () => now });
    const before = proxy.count('GetAuthorizationToken');
    const [a, b] = await Promise.all([registry.credentials(ctx()), registry.credentials(ctx())]);
    expect(a).toEqual({ username: 'AWS', password: `${ACCOUNT}-auth-token` });
    expect(b).toEqual(a);
    expect(await registry.credentials(ctx())).toEqual(a);
    expect(proxy.count('GetAuthorizationToken') - before).toBe(1);
    now = Date.parse('2014-12-31T23:51:00Z'); // inside the 10-minute margin: renewed
    await registry.credentials(ctx());
    expect(proxy.count('GetAuthorizationToken') - before).toBe(2);
  });

  it('imageExists: DescribeImages true for a pushed tag, false for ImageNotFoundException', async () => {
    await pushManifest('launch', 'pushed-1');
    const registry = createEcrRegistry({ uri: `https://${HOST}/launch`, environment: aws });
    expect(registry.uri).toBe(`${HOST}/launch`);
    expect(await registry.imageExists(`${HOST}/launch:pushed-1`, ctx())).toBe(true);
    expect(await registry.imageExists(`${HOST}/launch:never-pushed`, ctx())).toBe(false);
  });

  it('a missing repository is a clear error naming it', async () => {
    const registry = createEcrRegistry({ uri: `${HOST}/no-such-repo`, environment: aws });
    let error: unknown;
    try {
      await registry.imageExists(`${HOST}/no-such-repo:x`, ctx());
    } catch (e) {
      error = e;
    }
    expect(LaunchError.isInstance(error)).toBe(true);
    expect((error as LaunchError).code).toBe('registry.repository_not_found');
    expect((error as LaunchError).message).toBe(`ECR repository "no-such-repo" does not exist in account ${ACCOUNT}, region ${REGION}`);
    expect((error as LaunchError).hint).toContain('aws ecr create-repository --repository-name no-such-repo --region us-east-1');
  });

  it('refuses an image in another repository or registry', async () => {
    const registry = createEcrRegistry({ uri: `${HOST}/launch`, environment: aws });
    for (const image of [`${HOST}/launch-other:x`, `${HOST}/other:x`, `210987654321.dkr.ecr.${REGION}.amazonaws.com/launch:x`]) {
      await expect(registry.imageExists(image, ctx())).rejects.toMatchObject({ code: 'registry.wrong_registry' });
    }
  });

  it("is what selectRegistry's options.cloud.ecr expects", () => {
    const registry = selectRegistry(`${HOST}/launch`, { cloud: { ecr: ecrRegistryFactory(aws) } });
    expect(registry.name).toBe('ecr');
    expect(registry.uri).toBe(`${HOST}/launch`);
  });
});

if (available) {
  describeRegistry('ecr (moto)', async () => {
    await setUp;
    return {
      registry: createEcrRegistry({ uri: `${HOST}/team/conformance`, environment: aws, now: () => Date.parse('2014-06-01T00:00:00Z') }),
      push: (tag: string) => pushManifest('team/conformance', tag),
      credentials: { username: 'AWS', password: `${ACCOUNT}-auth-token` },
      host: HOST,
    };
  });
}
