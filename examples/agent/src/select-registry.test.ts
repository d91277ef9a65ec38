import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LaunchError, parseAgentConfig } from '@launch/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isConfigProblem } from './load-config.js';
import { registryPlan, selectRegistry } from './select-registry.js';
import { awsEndpoints } from './select-environment.js';

const config = (raw: Record<string, unknown>) => parseAgentConfig(raw, 'test config');

async function rejected(p: Promise<unknown>): Promise<LaunchError> {
  try {
    await p;
  } catch (error) {
    if (LaunchError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a LaunchError');
}

describe('registryPlan', () => {
  it('prefers builder.destination, then registry.uri, then the ECR parts; local means none', () => {
    expect(
      registryPlan(config({ builder: { type: 'docker', destination: 'reg.example.com/a' }, registry: { type: 'oci', uri: 'other.example.com/b' } })),
    ).toEqual({
      uri: 'reg.example.com/a',
      from: 'builder.destination',
      type: 'oci',
    });
    expect(registryPlan(config({ registry: { type: 'oci', uri: 'other.example.com/b' } }))?.from).toBe('registry.uri');
    expect(registryPlan(config({ registry: { type: 'ecr', account_id: '123456789012', region: 'eu-west-1', repo_name: 'ml' } }))).toEqual({
      uri: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml',
      from: 'registry.account_id, registry.region and registry.repo_name',
      type: 'ecr',
    });
    expect(registryPlan(config({ registry: { type: 'local' } }))).toBeUndefined();
    expect(registryPlan(config({}))).toBeUndefined();
  });
});

describe('selectRegistry', () => {
  let home: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'select-registry-'));
    await mkdir(join(home, '.docker'));
    const auth = Buffer.from('robot:s3cret-pw').toString('base64');
    await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { 'reg.example.com': { auth } } }));
  });
  afterAll(() => rm(home, { recursive: true, force: true }));

  it('makes an OCI registry with the credentials of ~/.docker/config.json, never printing them', async () => {
    const s = await selectRegistry({ config: config({ builder: { type: 'docker', destination: 'reg.example.com/team/app' } }), env: { HOME: home } });
    expect(s.registry?.name).toBe('oci');
    expect(s.registry?.needsPullSecret).toBe(true);
    expect(await s.registry!.credentials({ logger: { debug() {}, info() {}, warn() {}, error() {} } })).toEqual({ username: 'robot', password: 's3cret-pw' });
    expect(s.lines).toEqual([
      'registry: reg.example.com/team/app (OCI registry, from builder.destination); credentials from the Docker config (DOCKER_CONFIG or ~/.docker/config.json)',
    ]);
    expect(s.lines.join('\n')).not.toContain('s3cret');
  });

  it('takes the environment as the binary has it (process.env, an exotic object)', async () => {
    const s = await selectRegistry({ config: config({ builder: { type: 'docker', destination: 'reg.example.com/team/app' } }), env: process.env });
    expect(s.registry?.uri).toBe('reg.example.com/team/app');
  });

  it('loads the ECR registry from @launch/cloud-aws for an ECR host', async () => {
    const s = await selectRegistry({
      config: config({ builder: { type: 'docker', destination: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml' } }),
      env: {},
    });
    expect(s.registry?.name).toBe('ecr');
    expect(s.lines[0]).toContain('Amazon ECR (ecr), from builder.destination');
  });

  it('loads Artifact Registry from @launch/cloud-gcp, with the region of the host', async () => {
    const s = await selectRegistry({ config: config({ builder: { type: 'docker', destination: 'europe-west4-docker.pkg.dev/proj-123/repo/img' } }), env: {} });
    expect(s.registry?.name).toBe('gar');
    expect(s.lines).toEqual([
      'registry: europe-west4-docker.pkg.dev/proj-123/repo/img (Google Artifact Registry (gar), from builder.destination); credentials from Application Default Credentials (an access token as oauth2accesstoken)',
    ]);
  });

  it('takes a GAR registry of registry.* parts without a project, the project from the credentials', async () => {
    const key = join(home, 'sa.json');
    await writeFile(
      key,
      JSON.stringify({
        type: 'service_account',
        project_id: 'keyproj-42',
        client_email: 'a@keyproj-42.iam.gserviceaccount.com',
        private_key: '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n',
        token_uri: 'http://127.0.0.1:1/token',
      }),
    );
    const c = config({ registry: { type: 'gcr', region: 'us-central1', repository: 'repo', 'image-name': 'img' } });
    expect(registryPlan(c)).toMatchObject({ type: 'gar', garParts: { region: 'us-central1', repository: 'repo', imageName: 'img' } });
    const s = await selectRegistry({ config: c, env: { GOOGLE_APPLICATION_CREDENTIALS: key } });
    expect(s.registry?.name).toBe('gar');
    expect(s.registry?.uri).toBe('us-central1-docker.pkg.dev/keyproj-42/repo/img');
  });

  it('loads ACR from @launch/cloud-azure', async () => {
    const s = await selectRegistry({ config: config({ builder: { type: 'docker', destination: 'myacr.azurecr.io/team' } }), env: {} });
    expect(s.registry?.name).toBe('acr');
    expect(s.lines[0]).toContain('Azure Container Registry (acr), from builder.destination); credentials from DefaultAzureCredential');
  });

  it('names the missing GCP region for a multi-region GAR host without environment.region, as a config error', async () => {
    const error = await rejected(selectRegistry({ config: config({ registry: { type: 'gcr', uri: 'us-docker.pkg.dev/proj-123/repo/img' } }), env: {} }));
    expect(error.code).toBe('config.registry');
    expect(error.message).toMatch(/^registry.uri "us-docker.pkg.dev\/proj-123\/repo\/img" cannot be used: .*no region: set environment.region/s);
    expect(isConfigProblem(error)).toBe(true);
  });

  it('passes AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL to the AWS environment, the service one first', () => {
    expect(awsEndpoints({ AWS_ENDPOINT_URL: 'http://127.0.0.1:1', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:2' })).toEqual({
      s3: 'http://127.0.0.1:2',
      ecr: 'http://127.0.0.1:1',
      sts: 'http://127.0.0.1:1',
    });
    expect(awsEndpoints({})).toEqual({});
  });
});
