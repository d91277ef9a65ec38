import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LaunchError, parseAgentConfig, silentLogger, type AgentConfig } from '@launch/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerEngineAddress, pingDockerEngine } from './docker-engine.js';
import { isConfigProblem } from './load-config.js';
import { checkContextStore, describeBuildSetup, planBuildSetup, selectBuildSetup } from './select-builder.js';
import { containerRunner } from './select-container-runner.js';
import { contextStorePlan } from './select-context-store.js';

const config = (raw: Record<string, unknown>) => parseAgentConfig(raw, 'test config');
const down = { reachable: false as const, reason: 'ECONNREFUSED' };
const up = { reachable: true as const };

function thrown(fn: () => unknown): LaunchError {
  try {
    fn();
  } catch (error) {
    if (LaunchError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a LaunchError');
}

describe('planBuildSetup', () => {
  it('refuses kaniko at start-up without a kube config, as a config error (exit 2)', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'no-kube-'));
    const error = thrown(() => planBuildSetup(config({ builder: { type: 'kaniko', 'build-context-store': 's3://b/p' } }), {}, empty));
    expect(error.code).toBe('config.builder_no_cluster');
    expect(error.message).toContain('no kube config ($KUBECONFIG, ~/.kube/config)');
    expect(isConfigProblem(error)).toBe(true);
    // A KUBECONFIG naming a file that does not exist is no cluster either.
    expect(
      thrown(() => planBuildSetup(config({ builder: { type: 'kaniko', 'build-context-store': 's3://b/p' } }), { KUBECONFIG: join(empty, 'nope') }, empty)).code,
    ).toBe('config.builder_no_cluster');
    await rm(empty, { recursive: true, force: true });
  });

  it('names every kaniko-only key the docker builder ignores', () => {
    const plan = planBuildSetup(
      config({ builder: { type: 'docker', 'build-context-store': 's3://b/p', 'secret-name': 's', 'secret-key': 'k', 'build-job-name': 'mine' } }),
      {},
    );
    expect(plan.type).toBe('docker');
    expect(plan.warnings.join('\n')).toMatch(/builder\.build-context-store is used only by kaniko builds/);
    expect(plan.warnings.join('\n')).toMatch(/builder\.secret-name/);
    expect(plan.warnings.join('\n')).toMatch(/builder\.secret-key/);
    expect(plan.warnings.join('\n')).toMatch(/builder\.build-job-name/);
  });

  it('names what the noop builder does not use', () => {
    const plan = planBuildSetup(config({ builder: { type: 'noop', destination: '127.0.0.1:5000/team/app', platform: 'linux/amd64' } }), {});
    expect(plan.warnings).toEqual([
      'builder.destination is not used: the noop builder builds and pushes nothing',
      'builder.platform is not used: the noop builder builds nothing',
    ]);
  });

  it('says the registry block is unused when builder.destination decides, as in W&B', () => {
    const plan = planBuildSetup(
      config({ builder: { type: 'docker', destination: '127.0.0.1:5000/a' }, registry: { type: 'oci', uri: '127.0.0.1:5000/b' } }),
      {},
    );
    expect(plan.warnings).toContain('the registry block is not used: builder.destination decides where images are pushed (as in W&B)');
  });

  it('takes the engine from DOCKER_HOST and refuses one it cannot use', () => {
    expect(planBuildSetup(config({}), { DOCKER_HOST: 'unix:///run/x.sock' }).engine).toEqual({ dockerHost: 'unix:///run/x.sock', from: 'DOCKER_HOST' });
    expect(planBuildSetup(config({}), {}).engine.dockerHost).toBe('unix:///var/run/docker.sock');
    const error = thrown(() => dockerEngineAddress({ DOCKER_HOST: 'ssh://me@host' }));
    expect(error.code).toBe('config.docker_host');
    expect(error.message).toContain('ssh://me@host');
    expect(thrown(() => dockerEngineAddress({ DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1' })).message).toContain('without TLS');
  });
});

describe('selectBuildSetup', () => {
  it('without a builder block picks noop when no engine answers, and says why', async () => {
    const s = await selectBuildSetup({ config: config({}), env: {}, logger: silentLogger, probe: down });
    expect(s.builder.name).toBe('noop');
    expect(s.lines[0]).toMatch(/^launch: builder noop \(no builder block, and no Docker engine at unix socket \/var\/run\/docker.sock: ECONNREFUSED\)/);
  });

  it('without a builder block picks docker when the engine answers', async () => {
    const s = await selectBuildSetup({ config: config({}), env: { DOCKER_HOST: 'unix:///tmp/d.sock' }, logger: silentLogger, probe: up });
    expect(s.builder.name).toBe('docker');
    expect(s.lines[0]).toBe('launch: builder docker (no builder block, and the Docker engine at unix socket /tmp/d.sock (DOCKER_HOST) answers)');
  });

  it('keeps builder.type docker when the engine is down, with a warning', async () => {
    const s = await selectBuildSetup({ config: config({ builder: { type: 'docker' } }), env: {}, logger: silentLogger, probe: down });
    expect(s.builder.name).toBe('docker');
    expect(s.lines[1]).toMatch(/warning: the Docker engine at .* does not answer \(ECONNREFUSED\): builds fail until it does/);
  });

  it('gives the docker builder the registry of builder.destination', async () => {
    const s = await selectBuildSetup({
      config: config({ builder: { type: 'docker', destination: '127.0.0.1:5000/team/app' } }),
      env: { HOME: '/nonexistent' },
      logger: silentLogger,
      probe: up,
    });
    expect(s.registry?.name).toBe('oci');
    expect(s.registry?.uri).toBe('127.0.0.1:5000/team/app');
    expect(s.lines).toContain(
      'launch: registry: 127.0.0.1:5000/team/app (OCI registry, from builder.destination); no credentials for this host in the Docker config: anonymous',
    );
  });

  it('uses no registry for noop, even with one configured', async () => {
    const s = await selectBuildSetup({
      config: config({ builder: { type: 'noop' }, registry: { type: 'oci', uri: '127.0.0.1:5000/x' } }),
      env: {},
      logger: silentLogger,
    });
    expect(s.registry).toBeUndefined();
    expect(s.lines.some((l) => l.includes('the registry block is not used'))).toBe(true);
  });
});

describe('describeBuildSetup', () => {
  it('says what config check should show, refusals as error lines', () => {
    expect(describeBuildSetup(config({}), {})).toEqual([
      'environment: none: no cloud credentials are loaded',
      'builder: docker if the Docker engine at unix socket /var/run/docker.sock answers at start-up, else noop (no builder block)',
      'registry: none: built images stay in the Docker engine (no builder.destination or registry.uri)',
    ]);
    expect(
      describeBuildSetup(config({ builder: { type: 'docker', destination: '127.0.0.1:5000/t/a', platform: 'linux/arm64' } }), { HOME: '/nonexistent' }),
    ).toEqual([
      'environment: none: no cloud credentials are loaded',
      'builder: docker (builder.type) on the Docker engine at unix socket /var/run/docker.sock',
      'platform: linux/arm64 (builder.platform)',
      'registry: 127.0.0.1:5000/t/a (OCI registry, from builder.destination); no credentials for this host in the Docker config: anonymous',
    ]);
    expect(describeBuildSetup(config({ builder: { type: 'kaniko', 'build-context-store': 's3://b/p' } }), {}, '/nonexistent')).toEqual([
      expect.stringMatching(/^error: builder.type is kaniko, but there is no Kubernetes cluster to run build Jobs in/),
    ]);
  });
});

describe('kaniko, clouds and context stores', () => {
  let dir: string;
  let kubeconfig: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kaniko-plan-'));
    kubeconfig = join(dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]',
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
        '',
      ].join('\n'),
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));
  const kube = () => ({ KUBECONFIG: kubeconfig, HOME: dir });

  it('picks the context store by the URI scheme of builder.build-context-store, else the PVC', () => {
    const plan = (store: string | undefined, env: Record<string, string> = {}) =>
      contextStorePlan(config({ builder: { type: 'kaniko', ...(store ? { 'build-context-store': store } : {}) } }), env) ?? null;
    expect(plan('s3://bucket/ctx')).toMatchObject({ kind: 's3', cloud: 'aws', uri: 's3://bucket/ctx' });
    expect(plan('gs://bucket/ctx')).toMatchObject({ kind: 'gcs', cloud: 'gcp' });
    expect(plan('https://acct.blob.core.windows.net/contexts/launch')).toMatchObject({ kind: 'azure-blob', cloud: 'azure' });
    const pvcEnv = { WANDB_LAUNCH_KANIKO_PVC_NAME: 'kaniko-pvc' };
    expect(contextStorePlan(parseAgentConfig({ builder: { type: 'kaniko' } }, 'test config', { env: pvcEnv }), pvcEnv)).toEqual({
      kind: 'pvc',
      pvcName: 'kaniko-pvc',
      mountPath: '/kaniko',
      from: 'WANDB_LAUNCH_KANIKO_PVC_NAME',
    });
    // The store URI wins over the PVC, as in W&B.
    expect(plan('s3://bucket/ctx', pvcEnv)?.kind).toBe('s3');
    // Core's config check refuses other URIs; a caller that skips it still gets a config error.
    const bad = { ...config({}), builder: { type: 'kaniko', 'build-context-store': 'ftp://x/y', 'build-job-name': 'b', 'kaniko-image': 'i' } } as AgentConfig;
    const error = thrown(() => contextStorePlan(bad, {}));
    expect(error.code).toBe('config.context_store');
    expect(isConfigProblem(error)).toBe(true);
  });

  it("config check says which environment, builder, registry and store a kaniko config uses (the seed's AWS example)", () => {
    const lines = describeBuildSetup(
      config({
        environment: { type: 'aws', region: 'us-east-1' },
        builder: {
          type: 'kaniko',
          destination: '123456789012.dkr.ecr.us-east-1.amazonaws.com/launch',
          'build-context-store': 's3://my-bucket/contexts',
          'build-job-name': 'wandb-image-build',
        },
      }),
      kube(),
      dir,
    );
    expect(lines).toEqual([
      'environment: aws (AWS, region us-east-1, from environment.type); credentials from the AWS default credential chain',
      'builder: kaniko (builder.type): build Jobs wandb-image-build-<run id> with gcr.io/kaniko-project/executor:v1.11.0 in the cluster of the kube config',
      'registry: 123456789012.dkr.ecr.us-east-1.amazonaws.com/launch (Amazon ECR (ecr), from builder.destination); credentials from the AWS default credential chain (ECR GetAuthorizationToken)',
      'context store: s3://my-bucket/contexts (Amazon S3, from builder.build-context-store); credentials from the AWS default credential chain',
    ]);
  });

  it('config check makes the store as run does: a malformed or SAS-carrying store URI is an error, a good one passes', async () => {
    const store = (uri: string, extra: Record<string, unknown> = {}) =>
      checkContextStore(config({ ...extra, builder: { type: 'kaniko', destination: 'registry.local/launch', 'build-context-store': uri } }), kube(), dir);
    expect(await store('gs://Bad_Bucket/ctx', { environment: { type: 'gcp', region: 'us-central1', project: 'p' } })).toMatch(/^error: .*Bad_Bucket/);
    const sas = await store('https://acct.blob.core.windows.net/contexts?sv=2022-11-02&sig=SECRETSIGNATURE', { environment: { type: 'azure' } });
    expect(sas).toMatch(/^error: /);
    expect(sas).not.toContain('SECRETSIGNATURE');
    expect(await store('gs://good-bucket/ctx', { environment: { type: 'gcp', region: 'us-central1', project: 'p' } })).toBeUndefined();
    expect(await store('s3://good-bucket/ctx', { environment: { type: 'aws', region: 'us-east-1' } })).toBeUndefined();
  });

  it("config check for the seed's GCP and Azure examples", () => {
    const gcp = describeBuildSetup(
      config({
        environment: { type: 'gcp', region: 'us-central1' },
        builder: { type: 'kaniko', destination: 'us-central1-docker.pkg.dev/my-project/launch/img', 'build-context-store': 'gs://my-bucket/contexts' },
      }),
      kube(),
      dir,
    );
    expect(gcp[0]).toBe('environment: gcp (Google Cloud, region us-central1, from environment.type); credentials from Application Default Credentials');
    expect(gcp[2]).toContain('(Google Artifact Registry (gar), from builder.destination)');
    expect(gcp[3]).toBe(
      'context store: gs://my-bucket/contexts (Google Cloud Storage, from builder.build-context-store); credentials from Application Default Credentials',
    );
    expect(gcp.some((l) => l.startsWith('warning:') || l.startsWith('error:'))).toBe(false);
    const azure = describeBuildSetup(
      config({
        environment: { type: 'azure' },
        builder: { type: 'kaniko', destination: 'myacr.azurecr.io/launch', 'build-context-store': 'https://acct.blob.core.windows.net/contexts' },
      }),
      kube(),
      dir,
    );
    expect(azure[0]).toBe('environment: azure (Azure, from environment.type); credentials from DefaultAzureCredential');
    expect(azure[2]).toContain('(Azure Container Registry (acr), from builder.destination)');
    expect(azure[3]).toBe(
      'context store: https://acct.blob.core.windows.net/contexts (Azure Blob Storage, from builder.build-context-store); credentials from DefaultAzureCredential',
    );
    expect(azure.some((l) => l.startsWith('warning:') || l.startsWith('error:'))).toBe(false);
  });

  it('names an environment nothing uses, and builder.platform with kaniko', () => {
    const plan = planBuildSetup(
      config({ environment: { type: 'gcp', region: 'us-central1' }, builder: { type: 'docker', destination: '127.0.0.1:5000/a' } }),
      {},
    );
    expect(plan.warnings).toContain('environment (gcp) is not used: neither the registry nor a kaniko build context store is on gcp');
    const used = planBuildSetup(
      config({
        environment: { type: 'aws', region: 'us-east-1' },
        builder: { type: 'kaniko', destination: '127.0.0.1:5000/a', 'build-context-store': 's3://b/p', platform: 'linux/amd64' },
      }),
      kube(),
      dir,
    );
    expect(used.warnings).toEqual(["builder.platform is not used: the kaniko builder builds for the cluster's platform"]);
  });

  it('makes the kaniko builder with the S3 store and the OCI registry', async () => {
    const s = await selectBuildSetup({
      config: config({
        builder: {
          type: 'kaniko',
          destination: '127.0.0.1:5000/team/app',
          'build-context-store': 's3://bucket/ctx',
          'kaniko-config': { spec: { backoffLimit: 0 } },
        },
      }),
      env: { ...kube(), AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' },
      homedir: dir,
      logger: silentLogger,
      probe: down,
    });
    expect(s.builder.name).toBe('kaniko');
    expect(s.contextStore?.name).toBe('s3');
    expect(s.registry?.name).toBe('oci');
    expect(s.lines[0]).toBe(
      'launch: builder kaniko (builder.type: kaniko): build Jobs named wandb-launch-container-build-<run id> with gcr.io/kaniko-project/executor:v1.11.0, in the cluster of the kube config',
    );
    expect(s.lines).toContain(
      'launch: context store: s3://bucket/ctx (Amazon S3, from builder.build-context-store); credentials from the AWS default credential chain',
    );
  });

  it('makes the kaniko builder on the PVC of WANDB_LAUNCH_KANIKO_PVC_NAME', async () => {
    const env = { ...kube(), WANDB_LAUNCH_KANIKO_PVC_NAME: 'kaniko-pvc', WANDB_LAUNCH_KANIKO_PVC_MOUNT_PATH: join(dir, 'pvc') };
    const s = await selectBuildSetup({
      config: parseAgentConfig({ builder: { type: 'kaniko', destination: '127.0.0.1:5000/team/app' } }, 'test config', { env }),
      env,
      homedir: dir,
      logger: silentLogger,
      probe: down,
    });
    expect(s.builder.name).toBe('kaniko');
    expect(s.contextStore?.name).toBe('pvc');
    expect(s.lines).toContain(
      `launch: context store: PVC kaniko-pvc (a PersistentVolumeClaim, from WANDB_LAUNCH_KANIKO_PVC_NAME), mounted in the agent at ${join(dir, 'pvc')} and in build pods at /context`,
    );
  });

  it('turns a bad kaniko option into a config error naming it', async () => {
    const error = await selectBuildSetup({
      config: config({
        builder: { type: 'kaniko', destination: '127.0.0.1:5000/team/app', 'build-context-store': 's3://bucket/ctx', 'build-job-name': 'Not_A_Label' },
      }),
      env: { ...kube(), AWS_REGION: 'us-east-1' },
      homedir: dir,
      logger: silentLogger,
      probe: down,
    }).then(
      () => undefined,
      (e: unknown) => e as LaunchError,
    );
    expect(error?.code).toBe('config.builder');
    expect(error?.message).toContain('buildJobName');
    expect(isConfigProblem(error)).toBe(true);
  });
});

describe('pingDockerEngine', () => {
  let dir: string;
  let server: Server;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ping-'));
    // A real HTTP server on a unix socket, answering as the engine does.
    server = createServer((req, res) => {
      if (req.url === '/_ping') res.end('OK');
      else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(join(dir, 'engine.sock'), resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('is reachable when GET /_ping answers 200, and says why not otherwise', async () => {
    expect(await pingDockerEngine({ dockerHost: `unix://${join(dir, 'engine.sock')}`, from: 'DOCKER_HOST' })).toEqual({ reachable: true });
    expect(await pingDockerEngine({ dockerHost: `unix://${join(dir, 'missing.sock')}`, from: 'DOCKER_HOST' })).toEqual({ reachable: false, reason: 'ENOENT' });
  });

  it('decides the container runner from the same answer', async () => {
    const env = { DOCKER_HOST: `unix://${join(dir, 'engine.sock')}` };
    const runner = await containerRunner({ env, stateDir: dir, logger: silentLogger });
    expect(runner?.resources).toEqual(['local-container', 'local']);
    await runner?.close?.();
    expect(await containerRunner({ env: { DOCKER_HOST: `unix://${join(dir, 'missing.sock')}` }, stateDir: dir, logger: silentLogger })).toBeUndefined();
  });
});
