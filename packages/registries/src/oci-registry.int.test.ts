import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LaunchError, silentLogger } from '@launch/core';
import { dockerService, pushTestImage, registryServices, serviceAvailable } from '@launch/testkit';
import { createOciRegistry } from './oci-registry.js';

const docker = dockerService();
const registries = registryServices();
const ready = serviceAvailable('the test Docker engine and registries', !!docker && !!registries);
const ctx = { logger: silentLogger };

async function rejection(promise: Promise<unknown>): Promise<LaunchError> {
  try {
    await promise;
  } catch (error) {
    expect(LaunchError.isInstance(error)).toBe(true);
    return error as LaunchError;
  }
  throw new Error('expected a LaunchError');
}

/** A fetch that records every request (method and URL without query) before passing it on. */
function recordingFetch() {
  const calls: string[] = [];
  const wrapped: typeof fetch = (input, init) => {
    const url = new URL(String(input));
    calls.push(`${init?.method ?? 'GET'} ${url.origin}${url.pathname}`);
    return fetch(input, init);
  };
  return { calls, fetch: wrapped };
}

describe.runIf(ready)('OCI registry against the real Distribution registries', () => {
  const tag = `int-${process.pid}`;
  let dir: string;
  const repo = 'registries-int/app';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'registries-int-'));
    const auth = { username: registries!.username, password: registries!.password };
    await Promise.all(
      (['plain', 'basic', 'bearer'] as const).map((kind) =>
        pushTestImage({
          socketPath: docker!.socketPath,
          baseImage: docker!.baseImage,
          image: `${registries![kind]}/${repo}:${tag}`,
          ...(kind === 'plain' ? {} : { auth }),
        }),
      ),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const credentials = () => ({ username: registries!.username, password: registries!.password });

  it('Bearer: fetches one token, reuses it until expires_in runs out, then fetches another', async () => {
    const host = registries!.bearer;
    const { calls, fetch } = recordingFetch();
    let clock = 1_000_000;
    const registry = createOciRegistry({ uri: `${host}/${repo}`, credentials: credentials(), useDockerConfig: false, fetch, now: () => clock });
    const image = `${host}/${repo}:${tag}`;
    expect(await registry.imageExists(image, ctx)).toBe(true);
    // Challenge, token, retried HEAD.
    expect(calls.filter((c) => c.endsWith('/token'))).toHaveLength(1);
    expect(calls).toHaveLength(3);

    calls.length = 0;
    expect(await registry.imageExists(image, ctx)).toBe(true);
    expect(await registry.imageExists(`${host}/${repo}:nope`, ctx)).toBe(false);
    // A cache hit is one registry request each: no challenge, no token.
    expect(calls).toEqual([`HEAD http://${host}/v2/${repo}/manifests/${tag}`, `HEAD http://${host}/v2/${repo}/manifests/nope`]);

    // The token server's tokens live 300 s; past that the registry asks for a new one first.
    calls.length = 0;
    clock += 301_000;
    expect(await registry.imageExists(image, ctx)).toBe(true);
    expect(calls.filter((c) => c.endsWith('/token'))).toHaveLength(1);
  });

  it('Bearer: concurrent first checks share one token request', async () => {
    const host = registries!.bearer;
    const { calls, fetch } = recordingFetch();
    const registry = createOciRegistry({ uri: `${host}/${repo}`, credentials: credentials(), useDockerConfig: false, fetch });
    await registry.imageExists(`${host}/${repo}:${tag}`, ctx); // learn the challenge
    calls.length = 0;
    const other = createOciRegistry({ uri: `${host}/${repo}`, credentials: credentials(), useDockerConfig: false, fetch });
    const answers = await Promise.all([1, 2, 3, 4].map(() => other.imageExists(`${host}/${repo}:${tag}`, ctx)));
    expect(answers).toEqual([true, true, true, true]);
    // Every first HEAD is challenged, but the token for the scope is fetched once.
    expect(calls.filter((c) => c.endsWith('/token'))).toHaveLength(1);
  });

  it('Bearer: a wrong password is refused at the token server, named with both hosts and the user', async () => {
    const host = registries!.bearer;
    const registry = createOciRegistry({
      uri: `${host}/${repo}`,
      credentials: { username: registries!.username, password: 'not-the-password' },
      useDockerConfig: false,
    });
    const error = await rejection(registry.imageExists(`${host}/${repo}:${tag}`, ctx));
    expect(error.category).toBe('RegistryAuth');
    expect(error.message).toMatch(
      new RegExp(`^registry ${host}: the token server 127\\.0\\.0\\.1:\\d+ refused the credentials of user "${registries!.username}" \\(HTTP 401\\)$`),
    );
    expect(error.message + error.hint).not.toContain('not-the-password');
  });

  it('Bearer without credentials: the anonymous token does not reach the repository', async () => {
    const host = registries!.bearer;
    const registry = createOciRegistry({ uri: `${host}/${repo}`, useDockerConfig: false });
    const error = await rejection(registry.imageExists(`${host}/${repo}:${tag}`, ctx));
    expect(error.category).toBe('RegistryAuth');
    expect(error.message).toContain(`registry ${host} refused anonymous access to HEAD /v2/${repo}/manifests/${tag} (HTTP 401); no credentials were found`);
  });

  it('Basic without credentials: says none were found and where it looked', async () => {
    const host = registries!.basic;
    const configPath = join(dir, 'empty.json');
    writeFileSync(configPath, '{}');
    const registry = createOciRegistry({ uri: `${host}/${repo}`, dockerConfigPath: configPath, env: { PATH: '/usr/bin:/bin' } });
    expect(registry.needsPullSecret).toBe(false);
    const error = await rejection(registry.imageExists(`${host}/${repo}:${tag}`, ctx));
    expect(error.category).toBe('RegistryAuth');
    expect(error.message).toBe(
      `registry ${host} requires credentials for HEAD /v2/${repo}/manifests/${tag} and none were found in the Docker config ${configPath} (no entry for ${host})`,
    );
  });

  it('Basic: credentials from a credential helper named in the Docker config', async () => {
    const host = registries!.basic;
    const helper = join(dir, 'docker-credential-int');
    // The helper protocol: the server on stdin, JSON on stdout.
    writeFileSync(
      helper,
      `#!/bin/sh\nread -r url\n[ "$url" = "${host}" ] || { echo "credentials not found in native keychain"; exit 1; }\n` +
        `printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}' "$url" "${registries!.username}" "${registries!.password}"\n`,
    );
    chmodSync(helper, 0o755);
    const configPath = join(dir, 'helper.json');
    writeFileSync(configPath, JSON.stringify({ credHelpers: { [host]: 'int' } }));
    const registry = createOciRegistry({ uri: `${host}/${repo}`, dockerConfigPath: configPath, env: { PATH: `${dir}:/usr/bin:/bin` } });
    expect(registry.needsPullSecret).toBe(true);
    expect(await registry.imageExists(`${host}/${repo}:${tag}`, ctx)).toBe(true);
    expect(await registry.imageExists(`${host}/${repo}:missing`, ctx)).toBe(false);
    expect(await registry.credentials(ctx)).toEqual(credentials());
  });

  it('Basic: auths entry from DOCKER_CONFIG, and a wrong one is RegistryAuth without the password', async () => {
    const host = registries!.basic;
    const good = mkdtempSync(join(dir, 'good-'));
    writeFileSync(
      join(good, 'config.json'),
      JSON.stringify({ auths: { [`http://${host}`]: { auth: Buffer.from(`${registries!.username}:${registries!.password}`).toString('base64') } } }),
    );
    expect(await createOciRegistry({ uri: `${host}/${repo}`, env: { DOCKER_CONFIG: good } }).imageExists(`${host}/${repo}:${tag}`, ctx)).toBe(true);

    const bad = mkdtempSync(join(dir, 'bad-'));
    writeFileSync(join(bad, 'config.json'), JSON.stringify({ auths: { [host]: { username: registries!.username, password: 'wrong-pw-123' } } }));
    const error = await rejection(createOciRegistry({ uri: `${host}/${repo}`, env: { DOCKER_CONFIG: bad } }).imageExists(`${host}/${repo}:${tag}`, ctx));
    expect(error.category).toBe('RegistryAuth');
    expect(error.message).toBe(`registry ${host} refused the credentials of user "${registries!.username}" for HEAD /v2/${repo}/manifests/${tag} (HTTP 401)`);
    expect(JSON.stringify({ m: error.message, h: error.hint, s: error.stack })).not.toContain('wrong-pw-123');
  });

  it('plain: open access, no credentials, no pull secret', async () => {
    const host = registries!.plain;
    const { calls, fetch } = recordingFetch();
    const registry = createOciRegistry({ uri: `${host}/${repo}`, useDockerConfig: false, fetch });
    expect(registry.needsPullSecret).toBe(false);
    expect(await registry.credentials(ctx)).toBeNull();
    expect(await registry.imageExists(`${host}/${repo}:${tag}`, ctx)).toBe(true);
    expect(calls).toEqual([`HEAD http://${host}/v2/${repo}/manifests/${tag}`]);
  });
});
