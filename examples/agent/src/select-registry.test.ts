import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LaunchError, parseAgentConfig } from '@launch/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isConfigProblem } from './load-config.js';
import { registryPlan, selectRegistry } from './select-registry.js';

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
    expect(registryPlan(config({ builder: { type: 'docker', destination: 'reg.example.com/a' }, registry: { type: 'oci', uri: 'other.example.com/b' } }))).toEqual({
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
    expect(s.lines).toEqual(['registry: reg.example.com/team/app (OCI registry, from builder.destination); credentials from the Docker config (DOCKER_CONFIG or ~/.docker/config.json)']);
    expect(s.lines.join('\n')).not.toContain('s3cret');
  });

  it('takes the environment as the binary has it (process.env, an exotic object)', async () => {
    const s = await selectRegistry({ config: config({ builder: { type: 'docker', destination: 'reg.example.com/team/app' } }), env: process.env });
    expect(s.registry?.uri).toBe('reg.example.com/team/app');
  });

  it('loads the ECR registry from @launch/cloud-aws for an ECR host', async () => {
    const s = await selectRegistry({ config: config({ builder: { type: 'docker', destination: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml' } }), env: {} });
    expect(s.registry?.name).toBe('ecr');
    expect(s.lines[0]).toContain('Amazon ECR (ecr), from builder.destination');
  });

  it('refuses ACR and GAR as not available yet, as config errors naming the key', async () => {
    const acr = await rejected(selectRegistry({ config: config({ builder: { type: 'docker', destination: 'myacr.azurecr.io/team' } }), env: {} }));
    expect(acr.code).toBe('config.registry_unavailable');
    expect(acr.message).toBe('builder.destination names myacr.azurecr.io, Azure Container Registry (acr): that registry is not available yet in this agent');
    expect(isConfigProblem(acr)).toBe(true);
    const gar = await rejected(selectRegistry({ config: config({ registry: { type: 'gcr', uri: 'us-docker.pkg.dev/proj/repo/img' } }), env: {} }));
    expect(gar.message).toMatch(/^registry.uri names us-docker.pkg.dev, Google Artifact Registry \(gar\): that registry is not available yet/);
  });
});
