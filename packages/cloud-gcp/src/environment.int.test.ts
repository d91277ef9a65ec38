import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LaunchError, LaunchValidationError, silentLogger } from '@launch/core';
import { createGcpEnvironment, type GcpEnvironmentOptions } from './environment.js';
import { suggestGcpRegion } from './regions.js';
import { installLoopbackGuard } from '@launch/testkit';
import { isolateGoogleEnv, startGoogleTestServers, TEST_ACCOUNT, TEST_PROJECT, type GoogleTestServers } from './test-support/google.js';

const guard = installLoopbackGuard();
const ctx = () => ({ logger: silentLogger });
const dir = mkdtempSync(join(tmpdir(), 'gcp-env-'));

let servers: GoogleTestServers;
let restoreEnv: () => void = () => {};
const started = (async () => {
  servers = await startGoogleTestServers();
  restoreEnv = isolateGoogleEnv(servers.key.path, dir);
})();

afterAll(async () => {
  await servers?.close();
  restoreEnv();
  rmSync(dir, { recursive: true, force: true });
  guard.restore();
  expect(guard.violations).toEqual([]);
});

async function rejection(promise: Promise<unknown>): Promise<LaunchError> {
  try {
    await promise;
  } catch (error) {
    expect(LaunchError.isInstance(error), String(error)).toBe(true);
    return error as LaunchError;
  }
  throw new Error('expected the call to fail');
}

function invalid(options: GcpEnvironmentOptions): LaunchValidationError {
  try {
    createGcpEnvironment(options);
  } catch (error) {
    expect(error).toBeInstanceOf(LaunchValidationError);
    return error as LaunchValidationError;
  }
  throw new Error('expected the factory to refuse the options');
}

describe('GCP environment', () => {
  beforeAll(async () => {
    await started;
  });

  it('verify gets a token through the key file (JWT grant to its token_uri) and names project and account', async () => {
    const before = servers.oauth.requests;
    const identity = await createGcpEnvironment({ region: 'us-central1' }).verify(ctx());
    expect(identity).toEqual({ project: TEST_PROJECT, region: 'us-central1', principal: TEST_ACCOUNT, credentialSource: `key file ${servers.key.path}` });
    expect(servers.oauth.requests - before).toBe(1);
  });

  it("region and project: options first, then GOOGLE_CLOUD_REGION, the key file's project, GOOGLE_CLOUD_PROJECT", async () => {
    const env = { GOOGLE_APPLICATION_CREDENTIALS: servers.key.path, GOOGLE_CLOUD_REGION: 'europe-west4', GOOGLE_CLOUD_PROJECT: 'env-project-1' };
    const fromEnv = createGcpEnvironment({ env });
    expect([fromEnv.region, fromEnv.regionSource, await fromEnv.resolveProject(ctx())]).toEqual(['europe-west4', 'GOOGLE_CLOUD_REGION', TEST_PROJECT]);
    const fromOptions = createGcpEnvironment({ env, region: 'asia-east1', project: 'option-project' });
    expect([fromOptions.region, fromOptions.regionSource, await fromOptions.resolveProject(ctx())]).toEqual(['asia-east1', 'options', 'option-project']);
    // A key file without project_id: GOOGLE_CLOUD_PROJECT.
    const key = servers.oauth.addServiceAccount('np@launch-test-project.iam.gserviceaccount.com');
    const noProject = join(dir, 'no-project.json');
    const { project_id: _drop, ...rest } = JSON.parse((await import('node:fs')).readFileSync(key.path, 'utf8')) as Record<string, unknown>;
    writeFileSync(noProject, JSON.stringify(rest));
    expect(await createGcpEnvironment({ env: { ...env, GOOGLE_APPLICATION_CREDENTIALS: noProject } }).resolveProject(ctx())).toBe('env-project-1');
  });

  it('a well-formed region that does not exist is refused by verify with a suggestion, before any token request', async () => {
    const before = servers.oauth.requests;
    const error = await rejection(createGcpEnvironment({ region: 'us-centrall1' }).verify(ctx()));
    expect(error.code).toBe('gcp.unknown_region');
    expect(error.message).toBe('"us-centrall1" (from options) is not a Google Cloud region: did you mean "us-central1"?');
    expect(servers.oauth.requests).toBe(before);
    await expect(createGcpEnvironment({ region: 'us-centrall1', allowUnknownRegion: true }).verify(ctx())).resolves.toMatchObject({ region: 'us-centrall1' });
  });

  it('a malformed or missing region fails at start-up, naming where it looked', () => {
    expect(invalid({ region: 'us-central-1' }).message).toContain('region "us-central-1" is not a GCP region name (did you mean "us-central1"?)');
    expect(invalid({ env: { GOOGLE_CLOUD_REGION: 'us-east-1a' } }).message).toContain('(from GOOGLE_CLOUD_REGION)');
    expect(invalid({ env: {} }).message).toContain('no region: set environment.region in the config, or GOOGLE_CLOUD_REGION');
    expect(invalid({ region: 'us-central1', projekt: 'x' } as never).message).toContain('did you mean "project"?');
  });

  it('a key file that is missing, not JSON or has no private key is named without its contents', () => {
    const startUp = (path: string) => {
      try {
        createGcpEnvironment({ region: 'us-central1', keyFile: path });
      } catch (error) {
        return error as LaunchError;
      }
      throw new Error('expected a failure');
    };
    expect(startUp(join(dir, 'absent.json')).message).toBe(`GCP credentials file "${join(dir, 'absent.json')}" (keyFile option) does not exist`);
    writeFileSync(join(dir, 'bad.json'), 'not json {secret-ish}');
    expect(startUp(join(dir, 'bad.json')).message).toContain('is not JSON');
    expect(startUp(join(dir, 'bad.json')).message).not.toContain('secret-ish');
    writeFileSync(join(dir, 'nokey.json'), JSON.stringify({ type: 'service_account', client_email: 'a@b.iam.gserviceaccount.com', private_key: 'hunter2' }));
    const e = startUp(join(dir, 'nokey.json'));
    expect(e.message).toContain('has no "private_key" in PEM form (value hidden)');
    expect(e.message).not.toContain('hunter2');
  });

  it('a deleted key is refused by the token endpoint: PermissionDenied, no key material, no token', async () => {
    const key = servers.oauth.addServiceAccount('gone@launch-test-project.iam.gserviceaccount.com');
    servers.oauth.deleteKey(key.keyId);
    const error = await rejection(createGcpEnvironment({ region: 'us-central1', keyFile: key.path }).verify(ctx()));
    expect(error.code).toBe('gcp.credentials_rejected');
    expect(error.category).toBe('PermissionDenied');
    expect(error.message).toBe(`Google refused an access token for key file ${key.path}: invalid_grant (HTTP 400)`);
    expect(String((error.cause as Error).message)).not.toContain('PRIVATE KEY');
  });

  it('the token endpoint checks the JWT signature: a key file with another private key for the same account is refused', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const real = JSON.parse((await import('node:fs')).readFileSync(servers.key.path, 'utf8')) as Record<string, unknown>;
    const forged = join(dir, 'forged.json');
    writeFileSync(
      forged,
      JSON.stringify({
        ...real,
        private_key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      }),
    );
    const error = await rejection(createGcpEnvironment({ region: 'us-central1', keyFile: forged }).verify(ctx()));
    expect(error.code).toBe('gcp.credentials_rejected');
  });

  it('suggests regions for common slips', () => {
    expect(suggestGcpRegion('us-central-1')).toBe('us-central1');
    expect(suggestGcpRegion('europe-west')).toBe('europe-west1');
    expect(suggestGcpRegion('us-east1-b')).toBe('us-east1');
    expect(suggestGcpRegion('mars-north9')).toBeUndefined();
  });
});
