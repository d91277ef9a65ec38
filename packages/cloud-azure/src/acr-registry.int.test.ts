import { afterAll, describe, expect, it } from 'vitest';
import { ClientSecretCredential } from '@azure/identity';
import { LaunchError, silentLogger } from '@launch/core';
import { selectRegistry } from '@launch/registries';
import { describeRegistry } from '@launch/testkit';
import { ACR_REFRESH_TOKEN_USER, acrRegistryFactory, createAcrRegistry, type AcrRegistryOptions } from './acr-registry.js';
import { createAzureEnvironment, jwtClaims } from './environment.js';
import { httpsRequest } from './https-request.js';
import { startAad, type RunningAad } from './test-support/aad-server.js';
import { startAcr, type RunningAcr } from './test-support/acr-server.js';
import { createTestJwtSigner } from './test-support/jwt.js';
import { installLoopbackGuard } from '@launch/testkit';
import { makeTestTls, type TestTls } from './test-support/tls.js';

const guard = installLoopbackGuard();
const ctx = () => ({ logger: silentLogger });
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '11111111-2222-3333-4444-555555555555';
const SECRET = 'launch-test-client-secret-not-real';
const LOGIN_SERVER = 'launchtest.azurecr.io';

let tls: TestTls;
let aad: RunningAad;
let acr: RunningAcr;
const setUp = (async () => {
  tls = makeTestTls();
  const signer = createTestJwtSigner();
  aad = await startAad({ tls, signer, apps: [{ tenantId: TENANT, clientId: CLIENT, clientSecret: SECRET, objectId: 'agent-object-id' }] });
  acr = await startAcr({ tls, signer, loginServer: LOGIN_SERVER });
})();

afterAll(async () => {
  await acr?.close();
  await aad?.close();
  guard.restore();
  expect(guard.violations).toEqual([]);
});

function environment(secret = SECRET, tenant = TENANT) {
  const credential = new ClientSecretCredential(tenant, CLIENT, secret, {
    authorityHost: aad.authorityHost,
    disableInstanceDiscovery: true,
    tlsOptions: { ca: tls.ca },
    retryOptions: { maxRetries: 0 },
  });
  return createAzureEnvironment({ credential, credentialName: 'ClientSecretCredential' });
}

function registry(overrides: Partial<AcrRegistryOptions> = {}) {
  return createAcrRegistry({ uri: `${LOGIN_SERVER}/team/app`, environment: environment(), endpoint: acr.endpoint, ca: tls.ca, ...overrides });
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

describeRegistry('acr (test AAD + ACR servers)', async () => {
  await setUp;
  const env = environment();
  return {
    // No pull secret for ACR, as W&B: the cluster's nodes pull with their own identity.
    registry: createAcrRegistry({ uri: `${LOGIN_SERVER}/team/conformance`, environment: env, endpoint: acr.endpoint, ca: tls.ca }),
    needsPullSecret: false,
    push: async (tag: string) => void acr.putManifest('team/conformance', tag),
    // The refresh token the server issued last: the registry must hand back exactly what the exchange gave.
    get credentials() {
      return { username: ACR_REFRESH_TOKEN_USER, password: acr.refreshTokens.at(-1) ?? '(none issued yet)' };
    },
    host: LOGIN_SERVER,
    withPassword: (password: string) =>
      createAcrRegistry({ uri: `${LOGIN_SERVER}/team/conformance`, environment: environment(password), endpoint: acr.endpoint, ca: tls.ca }),
  };
});

describe('acr registry', () => {
  it('exchanges the AAD token once, and the refresh token logs in as docker does', async () => {
    await setUp;
    const before = { ...acr.counts };
    const r = registry();
    expect(r.needsPullSecret).toBe(false); // as W&B: no pull secret for ACR
    const [a, b] = await Promise.all([r.credentials(ctx()), r.credentials(ctx())]);
    expect(a).toEqual(b);
    expect(a!.username).toBe('00000000-0000-0000-0000-000000000000');
    expect(jwtClaims(a!.password)).toMatchObject({ aud: LOGIN_SERVER, tenant: TENANT, sub: 'agent-object-id', grant_type: 'refresh_token' });
    acr.putManifest('team/app', 'v1');
    expect(await r.imageExists(`${LOGIN_SERVER}/team/app:v1`, ctx())).toBe(true);
    expect(await r.imageExists(`https://${LOGIN_SERVER}/team/app:v2`, ctx())).toBe(false);
    expect(acr.counts.exchange - before.exchange).toBe(1);
    expect(acr.counts.token - before.token).toBe(1);
    // docker login: GET /oauth2/token with Basic 00000000-…:<refresh token>.
    const basic = Buffer.from(`${a!.username}:${a!.password}`).toString('base64');
    const answer = await httpsRequest(new URL(`/oauth2/token?service=${LOGIN_SERVER}&scope=repository:team/app:push,pull`, acr.endpoint), {
      method: 'GET',
      headers: { authorization: `Basic ${basic}` },
      ca: tls.ca,
    });
    expect(answer.status).toBe(200);
    expect(jwtClaims(JSON.parse(answer.body).access_token)).toMatchObject({ access: [{ type: 'repository', name: 'team/app', actions: ['push', 'pull'] }] });
  });

  it('exchanges again once the refresh token is near its expiry', async () => {
    await setUp;
    let clock = Date.now();
    const r = registry({ now: () => clock });
    const first = await r.credentials(ctx());
    const before = acr.counts.exchange;
    clock = (jwtClaims(first!.password).exp as number) * 1000 - 60_000; // inside the 5-minute margin
    await r.credentials(ctx());
    expect(acr.counts.exchange).toBe(before + 1);
  });

  it('a wrong client secret is RegistryAuth naming the registry and the credential, without the secret', async () => {
    await setUp;
    const wrong = 'wrong-secret-value-123';
    const error = await rejection(registry({ environment: environment(wrong) }).credentials(ctx()));
    expect(error.category).toBe('RegistryAuth');
    expect(error.message).toContain(LOGIN_SERVER);
    expect(error.message).toContain('ClientSecretCredential');
    expect(error.retryable).toBe(false);
    expect(allText(error)).not.toContain(wrong);
  });

  it('no credentials at all names the chain that was tried', async () => {
    await setUp;
    const unavailable = (what: string) => Object.assign(new Error(`${what} is unavailable`), { name: 'CredentialUnavailableError' });
    const credential = {
      getToken: async () => {
        throw Object.assign(new Error('none'), {
          name: 'AggregateAuthenticationError',
          errors: [unavailable('EnvironmentCredential'), unavailable('ManagedIdentityCredential')],
        });
      },
    };
    const error = await rejection(
      registry({ environment: createAzureEnvironment({ credential, credentialName: 'TestChain(Environment, ManagedIdentity)' }) }).credentials(ctx()),
    );
    expect(error.code).toBe('azure.no_credentials');
    expect(error.category).toBe('RegistryAuth');
    expect(error.message).toContain('TestChain(Environment, ManagedIdentity)');
  });

  it('a token ACR does not accept (wrong audience) is RegistryAuth with the role to grant', async () => {
    await setUp;
    const error = await rejection(registry({ aadScope: 'https://storage.azure.com/.default' }).credentials(ctx()));
    expect(error.code).toBe('registry.auth_failed');
    expect(error.category).toBe('RegistryAuth');
    expect(error.message).toContain(`${LOGIN_SERVER} refused the Azure AD token`);
    expect(error.hint).toContain('AcrPush');
    expect(allText(error)).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
  });

  it('an unreachable registry is a retryable error naming it', async () => {
    await setUp;
    const error = await rejection(registry({ endpoint: 'https://127.0.0.1:1' }).credentials(ctx()));
    expect(error.code).toBe('registry.unavailable');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain(LOGIN_SERVER);
  });

  it('refuses an image of another repository', async () => {
    await setUp;
    expect((await rejection(registry().imageExists(`${LOGIN_SERVER}/other:v1`, ctx()))).code).toBe('registry.wrong_registry');
  });

  it('refuses malformed URIs and options at the factory', () => {
    const env = createAzureEnvironment({ credential: { getToken: async () => null } });
    for (const [uri, text] of [
      ['myreg.azurecr.io/repo:tag', 'names a tag'],
      ['myreg.azurecr.io', 'not an Azure Container Registry'],
      ['evil.com/myreg.azurecr.io/x', 'not an Azure Container Registry'],
      ['myreg.azurecr.io/Repo', 'not an Azure Container Registry'],
    ] as const) {
      expect(() => createAcrRegistry({ uri, environment: env }), uri).toThrow(text);
    }
    expect(() => createAcrRegistry({ uri: 'myreg.azurecr.io/r', environment: env, endpoint: 'http://127.0.0.1:1' })).toThrow('endpoint');
    expect(() => createAcrRegistry({ uri: 'myreg.azurecr.io/r', environment: {} as never })).toThrow('environment');
  });

  it("plugs into selectRegistry's options.cloud.acr, with kaniko's settings", () => {
    const env = createAzureEnvironment({ credential: { getToken: async () => null } });
    const chosen = selectRegistry('https://MyReg.azurecr.io/launch', { cloud: { acr: acrRegistryFactory(env) } });
    expect(chosen.name).toBe('acr');
    expect(chosen.uri).toBe('myreg.azurecr.io/launch');
    expect((chosen as ReturnType<typeof createAcrRegistry>).kaniko).toEqual({
      credHelpers: { 'myreg.azurecr.io': 'acr-env' },
      podLabels: { 'azure.workload.identity/use': 'true' },
    });
  });
});

describe('azure environment', () => {
  it('verify gets a storage token and reads the tenant from it', async () => {
    await setUp;
    const identity = await environment().verify(ctx());
    expect(identity.tenantId).toBe(TENANT);
    expect(identity.objectId).toBe('agent-object-id');
    expect(aad.issued.some((i) => i.scope === 'https://storage.azure.com/.default')).toBe(true);
  });

  it('verify with an unknown tenant fails naming the credential, without the secret', async () => {
    await setUp;
    const error = await rejection(environment(SECRET, 'no-such-tenant').verify(ctx()));
    expect(error.code).toBe('azure.credential_unavailable');
    expect(error.message).toContain('endpoints_resolution_error');
    expect(error.message).toContain('ClientSecretCredential');
    expect(allText(error)).not.toContain(SECRET);
  });

  it('the default chain is named in full when nothing is configured', async () => {
    const credential = {
      getToken: async () => {
        throw Object.assign(new Error('none'), {
          name: 'AggregateAuthenticationError',
          errors: [Object.assign(new Error('x'), { name: 'CredentialUnavailableError' })],
        });
      },
    };
    const error = await rejection(createAzureEnvironment({ credential }).verify(ctx()));
    expect(error.code).toBe('azure.no_credentials');
    expect(error.message).toContain('the given credential');
    const chain = createAzureEnvironment().chain;
    for (const part of ['AZURE_CLIENT_SECRET', 'workload identity', 'managed identity', 'Azure CLI']) expect(chain).toContain(part);
  });
});
