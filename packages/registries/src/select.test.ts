import { describe, expect, it } from 'vitest';
import { LaunchError, type Registry } from '@launch/core';
import { createOciRegistry, type OciRegistry } from './oci-registry.js';
import { registryTypeOf, selectRegistry } from './select.js';

function refusal(fn: () => unknown): LaunchError {
  try {
    fn();
  } catch (error) {
    expect(LaunchError.isInstance(error)).toBe(true);
    return error as LaunchError;
  }
  throw new Error('expected a LaunchError');
}

const noDockerConfig = { useDockerConfig: false } as const;

describe('registryTypeOf (W&B registry_from_uri)', () => {
  it.each([
    ['myacr.azurecr.io/launch', 'acr'],
    ['https://myacr.azurecr.io/launch:tag', 'acr'],
    ['us-central1-docker.pkg.dev/proj/repo', 'gar'],
    ['us-central1-docker.pkg.dev/proj/repo/image:v1', 'gar'],
    ['123456789012.dkr.ecr.us-east-1.amazonaws.com/launch', 'ecr'],
    ['https://123456789012.dkr.ecr.eu-west-2.amazonaws.com/team/launch', 'ecr'],
    ['127.0.0.1:5000/launch', 'oci'],
    ['ghcr.io/acme/launch', 'oci'],
    ['harbor.example.com/ml/launch', 'oci'],
    ['acme/launch', 'oci'],
    // W&B's regexes are anchored at the start: a look-alike host is not a cloud registry.
    ['evil.io/myacr.azurecr.io/launch', 'oci'],
    ['myacr.azurecr.io.evil.com/launch', 'oci'],
  ])('%s → %s', (uri, type) => {
    expect(registryTypeOf(uri)).toBe(type);
  });

  it('refuses a cloud host in a form W&B would silently treat as anonymous', () => {
    const acr = refusal(() => registryTypeOf('my.acr.azurecr.io/launch'));
    expect(acr.code).toBe('registry.invalid_uri');
    expect(acr.message).toContain('my.acr.azurecr.io is Azure Container Registry (acr)');
    const gar = refusal(() => registryTypeOf('us-central1-docker.pkg.dev/proj'));
    expect(gar.message).toContain('<region>-docker.pkg.dev/<project>/<repository>');
  });

  it('refuses a uri with only a host, and invalid references', () => {
    expect(refusal(() => registryTypeOf('ghcr.io')).message).toContain('names only a registry host');
    expect(refusal(() => registryTypeOf('127.0.0.1:5000')).message).toContain('names only a registry host');
    expect(refusal(() => registryTypeOf('')).code).toBe('registry.invalid_uri');
    const bad = refusal(() => registryTypeOf('127.0.0.1:5000/Launch'));
    expect(bad.code).toBe('registry.invalid_reference');
    expect(bad.message).toContain('"Launch"');
  });
});

describe('selectRegistry', () => {
  it('returns the generic OCI registry for any other host', () => {
    const registry = selectRegistry('127.0.0.1:5000/team/launch', noDockerConfig) as OciRegistry;
    expect(registry.name).toBe('oci');
    expect(registry.uri).toBe('127.0.0.1:5000/team/launch');
    expect(registry.baseUrl).toBe('http://127.0.0.1:5000');
    expect(registry.repository).toBe('team/launch');
    expect((selectRegistry('ghcr.io/acme/launch', noDockerConfig) as OciRegistry).baseUrl).toBe('https://ghcr.io');
    expect((selectRegistry('acme/launch', noDockerConfig) as OciRegistry).baseUrl).toBe('https://registry-1.docker.io');
  });

  it.each([
    ['myacr.azurecr.io/launch', 'myacr.azurecr.io', 'acr'],
    ['us-central1-docker.pkg.dev/proj/repo', 'us-central1-docker.pkg.dev', 'gar'],
    ['123456789012.dkr.ecr.us-east-1.amazonaws.com/launch', '123456789012.dkr.ecr.us-east-1.amazonaws.com', 'ecr'],
  ])('refuses %s for now, naming the host and the type', (uri, host, type) => {
    const error = refusal(() => selectRegistry(uri));
    expect(error.code).toBe('registry.not_available');
    expect(error.message).toContain(`registry ${host} is`);
    expect(error.message).toContain(`(${type})`);
    expect(error.message).toContain('not available yet: the cloud packages bring it');
  });

  it('uses a cloud factory when one is given', () => {
    const fake: Registry = createOciRegistry({ uri: '127.0.0.1:5000/stand-in', useDockerConfig: false });
    const seen: string[] = [];
    const chosen = selectRegistry('myacr.azurecr.io/launch', { cloud: { acr: (uri) => (seen.push(uri), fake) } });
    expect(chosen).toBe(fake);
    expect(seen).toEqual(['myacr.azurecr.io/launch']);
  });
});

describe('createOciRegistry options', () => {
  it('uses plain HTTP for loopback, HTTPS elsewhere, and HTTP elsewhere only with insecure', () => {
    expect(createOciRegistry({ uri: 'localhost:5000/a', useDockerConfig: false }).baseUrl).toBe('http://localhost:5000');
    expect(createOciRegistry({ uri: 'https://127.0.0.1:5000/a', useDockerConfig: false }).baseUrl).toBe('https://127.0.0.1:5000');
    expect(createOciRegistry({ uri: 'reg.lan:5000/a', insecure: true, useDockerConfig: false }).baseUrl).toBe('http://reg.lan:5000');
    const error = refusal(() => createOciRegistry({ uri: 'http://reg.lan:5000/a', useDockerConfig: false }));
    expect(error.code).toBe('registry.invalid_options');
    expect(error.message).toContain('plain http:// to reg.lan is refused unless insecure is true');
  });

  it('refuses a tag in the uri, unknown keys, and never echoes a misplaced secret', () => {
    expect(refusal(() => createOciRegistry({ uri: '127.0.0.1:5000/a:v1' })).message).toContain('without a tag or digest');
    expect(refusal(() => createOciRegistry({ uri: 'ghcr.io' })).message).toContain('uri: names only a registry host (ghcr.io) and no repository');
    expect(refusal(() => createOciRegistry({ uri: '127.0.0.1:5000/a', insecur: true } as never)).message).toContain('did you mean "insecure"');
    const secret = refusal(() => createOciRegistry({ uri: '127.0.0.1:5000/a', credentials: 'alice:hunter2' } as never));
    expect(secret.message).toContain('credentials');
    expect(secret.message).not.toContain('hunter2');
  });

  it('refuses an image in another registry', async () => {
    const registry = createOciRegistry({ uri: '127.0.0.1:5000/a', useDockerConfig: false });
    let error: unknown;
    await registry.imageExists('127.0.0.1:5001/a:v1', { logger: { debug() {}, info() {}, warn() {}, error() {} } }).catch((e: unknown) => (error = e));
    expect(LaunchError.isInstance(error)).toBe(true);
    expect((error as LaunchError).code).toBe('registry.wrong_registry');
    expect((error as LaunchError).message).toContain('is in registry 127.0.0.1:5001, not in 127.0.0.1:5000');
  });
});
