import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LaunchError, silentLogger } from '@launch/core';
import { configKeyHost, credentialsFromDockerConfig, dockerConfigPath, readDockerConfig } from './docker-config.js';
import { createOciRegistry } from './oci-registry.js';

const ctx = { logger: silentLogger };
const SECRET = 'pa:ss-w0rd-s3cret';
const b64 = (s: string) => Buffer.from(s).toString('base64');

let dir: string;
let env: Record<string, string>;

/** A fake `docker-credential-<name>` speaking the helper protocol: server URL on stdin, JSON on stdout. */
function helper(name: string, body: string): void {
  const path = join(dir, `docker-credential-${name}`);
  writeFileSync(path, `#!/bin/sh\n[ "$1" = get ] || { echo "unexpected action $1" >&2; exit 2; }\nread -r url\n${body}\n`);
  chmodSync(path, 0o755);
}

function config(name: string, content: unknown): string {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

async function credentialsFor(content: unknown, registry: string) {
  return credentialsFromDockerConfig(readDockerConfig({ path: config('c', content) }), registry, { env });
}

async function refusal(promise: Promise<unknown>): Promise<LaunchError> {
  try {
    await promise;
  } catch (error) {
    expect(LaunchError.isInstance(error)).toBe(true);
    return error as LaunchError;
  }
  throw new Error('expected a LaunchError');
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'registries-docker-config-'));
  env = { PATH: `${dir}:/usr/bin:/bin`, HOME: dir };
  // Answers for one server; the exact "not found" text the real helpers print for the others.
  helper(
    'fake',
    `case "$url" in
  127.0.0.1:5000|https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"user-for-%s","Secret":"${SECRET}"}' "$url" "$url" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac`,
  );
  helper('broken', 'echo "the keychain is locked" >&2; exit 3');
  helper('garbage', `echo "not json ${SECRET}"`);
  helper('token', `printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh"}' "$url"`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('dockerConfigPath', () => {
  it('follows DOCKER_CONFIG, else HOME/.docker', () => {
    expect(dockerConfigPath({ DOCKER_CONFIG: '/etc/dc', HOME: '/home/u' })).toBe('/etc/dc/config.json');
    expect(dockerConfigPath({ HOME: '/home/u' })).toBe('/home/u/.docker/config.json');
  });
});

describe('configKeyHost', () => {
  it('reduces config keys to host[:port] as the Docker CLI does', () => {
    expect(configKeyHost('https://index.docker.io/v1/')).toBe('docker.io');
    expect(configKeyHost('http://127.0.0.1:5000/v2/')).toBe('127.0.0.1:5000');
    expect(configKeyHost('GHCR.io')).toBe('ghcr.io');
  });
});

describe('credentials from auths', () => {
  it('decodes base64 auth, splitting at the first colon only', async () => {
    expect(await credentialsFor({ auths: { '127.0.0.1:5000': { auth: b64(`alice:${SECRET}`) } } }, '127.0.0.1:5000')).toEqual({
      username: 'alice',
      password: SECRET,
    });
  });

  it('takes username/password fields, and matches keys written as URLs', async () => {
    expect(await credentialsFor({ auths: { 'https://reg.example.com/v1/': { username: 'bob', password: SECRET } } }, 'reg.example.com')).toEqual({
      username: 'bob',
      password: SECRET,
    });
    expect(await credentialsFor({ auths: { 'https://index.docker.io/v1/': { auth: b64('hub:pw') } } }, 'docker.io')).toEqual({
      username: 'hub',
      password: 'pw',
    });
  });

  it('has none for another registry, for a missing file, and for an entry without a secret', async () => {
    expect(await credentialsFor({ auths: { 'a.io': { auth: b64('u:p') } } }, 'b.io')).toBeNull();
    expect(await credentialsFor({ auths: { 'a.io': {} } }, 'a.io')).toBeNull();
    const missing = readDockerConfig({ path: join(dir, 'nope.json') });
    expect(missing.found).toBe(false);
    expect(await credentialsFromDockerConfig(missing, 'a.io', { env })).toBeNull();
  });

  it('refuses an auth value that is not base64 of user:password, without echoing it', async () => {
    const error = await refusal(credentialsFor({ auths: { 'a.io': { auth: b64(SECRET.replace(':', '')) } } }, 'a.io'));
    expect(error.message).toContain('"auths.a.io.auth" is not base64 of "username:password"');
    expect(error.message).not.toContain(SECRET.replace(':', ''));
  });

  it('refuses identity tokens with a hint instead of silently ignoring them', async () => {
    const error = await refusal(credentialsFor({ auths: { 'a.io': { identitytoken: 'tok' } } }, 'a.io'));
    expect(error.category).toBe('RegistryAuth');
    expect(error.message).toContain('identity token for a.io');
  });
});

describe('credentials from helpers', () => {
  it('runs credHelpers[host] with the host on stdin', async () => {
    expect(await credentialsFor({ credHelpers: { '127.0.0.1:5000': 'fake' } }, '127.0.0.1:5000')).toEqual({
      username: 'user-for-127.0.0.1:5000',
      password: SECRET,
    });
  });

  it('uses credsStore for every registry, before auths (the Docker CLI rule), with the Hub key for docker.io', async () => {
    const content = { credsStore: 'fake', auths: { '127.0.0.1:5000': { auth: b64('from-auths:x') } } };
    expect(await credentialsFor(content, '127.0.0.1:5000')).toEqual({ username: 'user-for-127.0.0.1:5000', password: SECRET });
    expect(await credentialsFor(content, 'docker.io')).toEqual({ username: 'user-for-https://index.docker.io/v1/', password: SECRET });
  });

  it('prefers credHelpers over credsStore', async () => {
    const error = await refusal(credentialsFor({ credsStore: 'fake', credHelpers: { '127.0.0.1:5000': 'broken' } }, '127.0.0.1:5000'));
    expect(error.message).toContain('docker-credential-broken');
  });

  it('answers null when the helper has no credentials for the server', async () => {
    expect(await credentialsFor({ credHelpers: { 'other.io': 'fake' } }, 'other.io')).toBeNull();
  });

  it('turns a failing, missing or babbling helper into a RegistryAuth error without secrets', async () => {
    const broken = await refusal(credentialsFor({ credHelpers: { 'a.io': 'broken' } }, 'a.io'));
    expect(broken.category).toBe('RegistryAuth');
    expect(broken.message).toContain('docker-credential-broken failed for a.io (exit code 3): the keychain is locked');

    const missing = await refusal(credentialsFor({ credHelpers: { 'a.io': 'absent' } }, 'a.io'));
    expect(missing.message).toContain('docker-credential-absent (configured for a.io) is not on PATH');

    const garbage = await refusal(credentialsFor({ credHelpers: { 'a.io': 'garbage' } }, 'a.io'));
    expect(garbage.message).toContain('not JSON');
    expect(garbage.message).not.toContain(SECRET);

    const token = await refusal(credentialsFor({ credHelpers: { 'a.io': 'token' } }, 'a.io'));
    expect(token.message).toContain('identity token');
  });

  it('refuses helper names that are paths', () => {
    expect(() => readDockerConfig({ path: config('p', { credHelpers: { 'a.io': '../../bin/sh' } }) })).toThrow(
      /credential helper "..\/..\/bin\/sh" \(for a.io\) is not a plain name/,
    );
  });
});

describe('readDockerConfig', () => {
  it('refuses a file that is not JSON without quoting it', () => {
    const path = config('bad', `{"auths": {"a.io": {"auth": "${SECRET}"}`);
    let error: unknown;
    try {
      readDockerConfig({ path });
    } catch (e) {
      error = e;
    }
    expect(LaunchError.isInstance(error)).toBe(true);
    expect((error as Error).message).toBe(`Docker config ${path} is invalid: it is not valid JSON`);
  });

  it('names fields of the wrong type', () => {
    expect(() => readDockerConfig({ path: config('t1', { auths: [] }) })).toThrow(/"auths" should be an object, found an array of 0/);
    expect(() => readDockerConfig({ path: config('t2', { auths: { 'a.io': { auth: 5 } } }) })).toThrow(/"auths.a.io.auth" should be a string, found number/);
    expect(() => readDockerConfig({ path: config('t3', { credsStore: 1 }) })).toThrow(/"credsStore" should be a string/);
  });
});

describe('createOciRegistry and the Docker config', () => {
  const make = (content: unknown) => createOciRegistry({ uri: '127.0.0.1:5000/launch', dockerConfigPath: config('r', content), env });

  it('needs a pull secret exactly when credentials are configured for its host', () => {
    expect(make({ auths: { '127.0.0.1:5000': { auth: b64('u:p') } } }).needsPullSecret).toBe(true);
    expect(make({ credHelpers: { '127.0.0.1:5000': 'fake' } }).needsPullSecret).toBe(true);
    expect(make({ credsStore: 'fake', auths: { '127.0.0.1:5000': {} } }).needsPullSecret).toBe(true);
    expect(make({ credsStore: 'fake' }).needsPullSecret).toBe(false);
    expect(make({ auths: { 'other.io': { auth: b64('u:p') } } }).needsPullSecret).toBe(false);
    expect(createOciRegistry({ uri: '127.0.0.1:5000/launch', credentials: { username: 'u', password: 'p' } }).needsPullSecret).toBe(true);
  });

  it('returns the helper credentials from credentials()', async () => {
    expect(await make({ credHelpers: { '127.0.0.1:5000': 'fake' } }).credentials(ctx)).toEqual({ username: 'user-for-127.0.0.1:5000', password: SECRET });
  });

  it('reads DOCKER_CONFIG from its env option', async () => {
    const dockerDir = mkdtempSync(join(dir, 'dc-'));
    writeFileSync(join(dockerDir, 'config.json'), JSON.stringify({ auths: { '127.0.0.1:5000': { auth: b64('from-env:pw') } } }));
    const registry = createOciRegistry({ uri: '127.0.0.1:5000/launch', env: { ...env, DOCKER_CONFIG: dockerDir } });
    expect(await registry.credentials(ctx)).toEqual({ username: 'from-env', password: 'pw' });
  });

  it('refuses a dockerConfigPath that does not exist at start-up', () => {
    expect(() => createOciRegistry({ uri: '127.0.0.1:5000/launch', dockerConfigPath: join(dir, 'missing.json') })).toThrow(/dockerConfigPath: no file at/);
  });

  it('has no credentials when the Docker config is turned off, and refuses a config path it would ignore', async () => {
    const dockerDir = mkdtempSync(join(dir, 'dc-'));
    writeFileSync(join(dockerDir, 'config.json'), JSON.stringify({ auths: { '127.0.0.1:5000': { auth: b64('u:p') } } }));
    const registry = createOciRegistry({ uri: '127.0.0.1:5000/launch', env: { ...env, DOCKER_CONFIG: dockerDir }, useDockerConfig: false });
    expect(registry.needsPullSecret).toBe(false);
    expect(await registry.credentials(ctx)).toBeNull();
    const path = config('off', {});
    expect(() => createOciRegistry({ uri: '127.0.0.1:5000/launch', dockerConfigPath: path, useDockerConfig: false })).toThrow(
      /dockerConfigPath: .*useDockerConfig is false/,
    );
    expect(() => createOciRegistry({ uri: '127.0.0.1:5000/launch', dockerConfigPath: path, credentials: { username: 'u', password: 'p' } })).toThrow(
      /dockerConfigPath: .*credentials are given/,
    );
  });
});
