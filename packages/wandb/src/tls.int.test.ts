import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LaunchError } from '@launch/core';
import { createWandbTestServer, type WandbTestServer } from '@launch/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWandbClient } from './client.js';

// A private CA and a server certificate for 127.0.0.1, made with the openssl CLI at test time.
let dir: string;
let server: WandbTestServer;

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wandb-tls-'));
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Launch Test CA', '-keyout', 'ca.key', '-out', 'ca.pem');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
    '-out',
    'server.pem',
  );
  server = await createWandbTestServer({
    tls: { key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')) },
  });
});
afterAll(async () => {
  await server?.close();
});

const viewerWith = async (env: Record<string, string>, caCertFile?: string) => {
  const c = createWandbClient({ apiKey: server.apiKey, baseUrl: server.url, retry: { maxAttempts: 1 }, env, ...(caCertFile ? { caCertFile } : {}) });
  try {
    return await c.viewer();
  } finally {
    await c.close();
  }
};

describe('custom CA bundle', () => {
  it('refuses a server whose CA is not trusted, saying how to add the CA', async () => {
    const error = await viewerWith({}).catch((e: unknown) => e);
    expect(LaunchError.isInstance(error)).toBe(true);
    expect((error as LaunchError).code).toBe('wandb.network');
    expect((error as LaunchError).message).toMatch(/certificate/i);
    expect((error as LaunchError).hint).toContain('REQUESTS_CA_BUNDLE');
  });

  it('trusts the CA named by REQUESTS_CA_BUNDLE (what the Helm chart sets)', async () => {
    expect(await viewerWith({ REQUESTS_CA_BUNDLE: join(dir, 'ca.pem') })).toMatchObject({ username: 'tester' });
  });

  it('trusts the CA named by NODE_EXTRA_CA_CERTS even when set after Node started', async () => {
    expect(await viewerWith({ NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') })).toMatchObject({ username: 'tester' });
  });

  it('trusts an explicit caCertFile option', async () => {
    expect(await viewerWith({}, join(dir, 'ca.pem'))).toMatchObject({ username: 'tester' });
  });

  it('fails at start-up when the bundle cannot be read or holds no certificate', () => {
    expect(() => createWandbClient({ apiKey: 'k-123456', env: { REQUESTS_CA_BUNDLE: join(dir, 'missing.pem') } })).toThrow(
      `cannot read the CA bundle ${join(dir, 'missing.pem')} named by REQUESTS_CA_BUNDLE: ENOENT`,
    );
    expect(() => createWandbClient({ apiKey: 'k-123456', env: { NODE_EXTRA_CA_CERTS: join(dir, 'ext.cnf') } })).toThrow(/holds no PEM certificate/);
  });
});
