import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LaunchError, LaunchValidationError, silentLogger } from '@launch/core';
import { selectRegistry } from '@launch/registries';
import { describeRegistry } from '@launch/testkit';
import { createGcpEnvironment, type GcpEnvironment } from './environment.js';
import { createGarRegistry, garRegistryFactory, GAR_USERNAME, type GarRegistryOptions } from './gar-registry.js';
import { installLoopbackGuard } from '@launch/testkit';
import { isolateGoogleEnv, startGoogleTestServers, TEST_ACCOUNT, TEST_PROJECT, type GoogleTestServers } from './test-support/google.js';

const guard = installLoopbackGuard();
const ctx = () => ({ logger: silentLogger });
const REGION = 'us-central1';
const HOST = `${REGION}-docker.pkg.dev`;
const FIXED_TOKEN = 'ya29.conformance-fixed-token';
const emptyDir = mkdtempSync(join(tmpdir(), 'gcp-empty-'));

let servers: GoogleTestServers;
let gcp: GcpEnvironment;
let restoreEnv: () => void = () => {};
const started = (async () => {
  servers = await startGoogleTestServers();
  restoreEnv = isolateGoogleEnv(servers.key.path, emptyDir);
  servers.gar.addRepository(TEST_PROJECT, 'launch');
  servers.gar.addRepository(TEST_PROJECT, 'locked', { deny: [TEST_ACCOUNT] });
  gcp = createGcpEnvironment({ region: REGION });
})();

afterAll(async () => {
  await servers?.close();
  restoreEnv();
  rmSync(emptyDir, { recursive: true, force: true });
  guard.restore();
  expect(guard.violations).toEqual([]);
});

function registry(overrides: Partial<GarRegistryOptions> = {}) {
  return createGarRegistry({ uri: `${HOST}/${TEST_PROJECT}/launch/images`, environment: gcp, endpoint: servers.gar.endpoint, ...overrides });
}

/** An environment handing out `token` as its access token (a revoked or forged one). */
function withToken(token: string): GcpEnvironment {
  return { ...gcp, accessToken: async () => ({ token, expiresAt: Date.now() + 3600_000 }) };
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

describeRegistry('gar (Artifact Registry test server, access token)', async () => {
  await started;
  // The conformance suite compares credentials() with a known password: this token server issues a fixed token.
  servers.oauth.fixToken(FIXED_TOKEN);
  const env = createGcpEnvironment({ region: REGION });
  const make = (environment: GcpEnvironment) =>
    createGarRegistry({ uri: `${HOST}/${TEST_PROJECT}/launch/conformance`, environment, endpoint: servers.gar.endpoint });
  return {
    registry: make(env),
    push: async (tag: string) => {
      servers.gar.putManifest(TEST_PROJECT, 'launch', 'conformance', tag);
    },
    credentials: { username: GAR_USERNAME, password: FIXED_TOKEN },
    host: HOST,
    withPassword: (password: string) => make(withToken(password)),
    cleanup: () => servers.oauth.fixToken(undefined),
  };
});

describe('Artifact Registry against the test servers', () => {
  beforeAll(async () => {
    await started;
  });

  it("credentials() is oauth2accesstoken and a token from the key file's token_uri, fetched once while it is fresh", async () => {
    const env = createGcpEnvironment({ region: REGION });
    const reg = createGarRegistry({ uri: `https://${HOST}/${TEST_PROJECT}/launch/images`, environment: env, endpoint: servers.gar.endpoint });
    const before = servers.oauth.requests;
    const [a, b] = await Promise.all([reg.credentials(ctx()), reg.credentials(ctx())]);
    expect(a.username).toBe('oauth2accesstoken');
    expect(servers.oauth.check(a.password)?.email).toBe(TEST_ACCOUNT);
    expect(b).toEqual(a);
    expect(await reg.credentials(ctx())).toEqual(a);
    expect(servers.oauth.requests - before).toBe(1);
  });

  it('renews the token once it is within the refresh margin of its expiry', async () => {
    let now = Date.now();
    const env = createGcpEnvironment({ region: REGION, refreshMarginMs: 5 * 60_000, now: () => now });
    const first = await env.accessToken(ctx());
    const before = servers.oauth.requests;
    now = first.expiresAt - 4 * 60_000;
    await env.accessToken(ctx());
    expect(servers.oauth.requests - before).toBe(1);
  });

  it('imageExists: HEAD manifests with the Bearer token: true for a pushed tag and its digest, false otherwise', async () => {
    const digest = servers.gar.putManifest(TEST_PROJECT, 'launch', 'images', 'pushed-1');
    const reg = registry();
    expect(await reg.imageExists(`${HOST}/${TEST_PROJECT}/launch/images:pushed-1`, ctx())).toBe(true);
    expect(await reg.imageExists(`${HOST}/${TEST_PROJECT}/launch/images@${digest}`, ctx())).toBe(true);
    expect(await reg.imageExists(`${HOST}/${TEST_PROJECT}/launch/images:never`, ctx())).toBe(false);
  });

  it('a missing repository is named, with the command to create it', async () => {
    const error = await rejection(registry({ uri: `${HOST}/${TEST_PROJECT}/nope/images` }).imageExists(`${HOST}/${TEST_PROJECT}/nope/images:x`, ctx()));
    expect(error.code).toBe('registry.repository_not_found');
    expect(error.message).toBe(`Artifact Registry repository "nope" does not exist in project ${TEST_PROJECT}, location ${REGION}`);
    expect(error.hint).toContain('gcloud artifacts repositories create nope');
  });

  it('a 403 names the Artifact Registry permission and role', async () => {
    const error = await rejection(registry({ uri: `${HOST}/${TEST_PROJECT}/locked/images` }).imageExists(`${HOST}/${TEST_PROJECT}/locked/images:x`, ctx()));
    expect(error.category).toBe('RegistryAuth');
    expect(error.message).toContain('HTTP 403');
    expect(error.hint).toContain(`artifactregistry.repositories.downloadArtifacts (roles/artifactregistry.reader)`);
    expect(error.hint).toContain(`projects/${TEST_PROJECT}/locations/${REGION}/repositories/locked`);
  });

  it('refuses an image of another repository', async () => {
    const error = await rejection(registry().imageExists(`${HOST}/${TEST_PROJECT}/other/images:x`, ctx()));
    expect(error.code).toBe('registry.wrong_registry');
  });

  it('selectRegistry picks it through options.cloud.gar', async () => {
    const reg = selectRegistry(`${HOST}/${TEST_PROJECT}/launch/images`, { cloud: { gar: garRegistryFactory(gcp, { endpoint: servers.gar.endpoint }) } });
    expect(reg.name).toBe('gar');
    servers.gar.putManifest(TEST_PROJECT, 'launch', 'images', 'via-select');
    expect(await reg.imageExists(`${HOST}/${TEST_PROJECT}/launch/images:via-select`, ctx())).toBe(true);
  });
});

describe("Artifact Registry options (W&B's URI rules)", () => {
  beforeAll(async () => {
    await started;
  });
  const invalid = (options: Partial<GarRegistryOptions>): LaunchValidationError => {
    try {
      createGarRegistry({ environment: gcp, ...options } as GarRegistryOptions);
    } catch (error) {
      expect(error).toBeInstanceOf(LaunchValidationError);
      return error as LaunchValidationError;
    }
    throw new Error('expected the factory to refuse the options');
  };

  it("accepts the uri with or without https://, and the parts with the environment's project", () => {
    expect(createGarRegistry({ uri: `https://${HOST}/${TEST_PROJECT}/launch/images`, environment: gcp }).uri).toBe(`${HOST}/${TEST_PROJECT}/launch/images`);
    const parts = createGarRegistry({ region: 'europe-west4', repository: 'launch', imageName: 'images', environment: gcp });
    expect(parts.uri).toBe(`europe-west4-docker.pkg.dev/${TEST_PROJECT}/launch/images`);
    expect(createGarRegistry({ uri: `us-docker.pkg.dev/${TEST_PROJECT}/launch/images`, environment: gcp }).host).toBe('us-docker.pkg.dev');
  });

  it('refuses malformed destinations, naming what was found', () => {
    expect(invalid({ uri: `${HOST}/${TEST_PROJECT}/launch` }).message).toContain('names no image');
    expect(invalid({ uri: `${HOST}/${TEST_PROJECT}/launch/images:v1` }).message).toContain('names a tag ("v1")');
    expect(invalid({ uri: `gcr.io/${TEST_PROJECT}/images` }).message).toContain('is not of the form');
    expect(invalid({ uri: `us-central-1-docker.pkg.dev/${TEST_PROJECT}/launch/images` }).message).toContain('did you mean "us-central1"?');
    expect(invalid({ uri: `${HOST}/Bad_Project/launch/images` }).message).toContain('is not a project id');
    expect(invalid({ uri: `${HOST}/${TEST_PROJECT}/launch/images`, region: REGION }).message).toContain('not both');
    expect(invalid({ region: REGION, imageName: 'x' }).issues.map((i) => i.path)).toEqual(['repository']);
  });
});
