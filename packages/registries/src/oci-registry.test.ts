import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LaunchError, silentLogger } from '@launch/core';
import { MANIFEST_ACCEPT, createOciRegistry } from './oci-registry.js';

/**
 * Registries that misbehave on purpose, on 127.0.0.1, to check how hostile or broken answers are
 * reported. The protocol itself is tested against the real Distribution registry (`*.int.test.ts`).
 */
type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let host: string;
let handler: Handler = (_req, res) => res.end();
const seen: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }> = [];
const ctx = { logger: silentLogger };

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function serve(h: Handler): void {
  seen.length = 0;
  handler = h;
}

async function rejection(promise: Promise<unknown>): Promise<LaunchError> {
  try {
    await promise;
  } catch (error) {
    expect(LaunchError.isInstance(error)).toBe(true);
    return error as LaunchError;
  }
  throw new Error('expected a LaunchError');
}

const registry = (extra: Record<string, unknown> = {}) => createOciRegistry({ uri: `${host}/team/app`, useDockerConfig: false, ...extra });

describe('OCI registry requests', () => {
  it('sends HEAD with the OCI and Docker manifest media types, by tag, digest or latest', async () => {
    serve((_req, res) => {
      res.writeHead(200).end();
    });
    const digest = `sha256:${'ab'.repeat(32)}`;
    expect(await registry().imageExists(`${host}/team/app:v1`, ctx)).toBe(true);
    expect(await registry().imageExists(`${host}/team/app@${digest}`, ctx)).toBe(true);
    expect(await registry().imageExists(`${host}/team/app`, ctx)).toBe(true);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'HEAD /v2/team/app/manifests/v1',
      `HEAD /v2/team/app/manifests/${digest}`,
      'HEAD /v2/team/app/manifests/latest',
    ]);
    const accept = seen[0]!.headers.accept!;
    expect(accept).toBe(MANIFEST_ACCEPT);
    for (const type of [
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.docker.distribution.manifest.v2+json',
      'application/vnd.docker.distribution.manifest.list.v2+json',
    ]) {
      expect(accept).toContain(type);
    }
    expect(seen[0]!.headers.authorization).toBeUndefined();
  });

  it('Basic challenge: retries with the credentials and keeps sending them', async () => {
    const expected = `Basic ${Buffer.from('u:p@ss').toString('base64')}`;
    serve((req, res) => {
      if (req.headers.authorization === expected) res.writeHead(200).end();
      else res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' }).end();
    });
    const r = registry({ credentials: { username: 'u', password: 'p@ss' } });
    expect(await r.imageExists(`${host}/team/app:v1`, ctx)).toBe(true);
    expect(await r.imageExists(`${host}/team/app:v2`, ctx)).toBe(true);
    expect(seen.map((s) => s.headers.authorization ?? 'none')).toEqual(['none', expected, expected]);
  });

  it('Bearer: a token without expires_in lives the specification default of 60 s', async () => {
    let tokens = 0;
    serve((req, res) => {
      if (req.url?.startsWith('/token')) {
        tokens++;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `t${tokens}` }));
      } else if (req.headers.authorization === `Bearer t${tokens}`) res.writeHead(404).end();
      else res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="svc"` }).end();
    });
    let clock = 0;
    const r = registry({ now: () => clock });
    expect(await r.imageExists(`${host}/team/app:v1`, ctx)).toBe(false);
    const tokenRequest = seen.find((s) => s.url.startsWith('/token'))!;
    // The scope falls back to pull on the repository; the service is passed on.
    expect(new URL(tokenRequest.url, 'http://x').searchParams.getAll('scope')).toEqual(['repository:team/app:pull']);
    expect(new URL(tokenRequest.url, 'http://x').searchParams.get('service')).toBe('svc');
    expect(tokenRequest.headers.authorization).toBeUndefined();
    clock = 45_000;
    expect(await r.imageExists(`${host}/team/app:v1`, ctx)).toBe(false);
    expect(tokens).toBe(1);
    clock = 61_000;
    expect(await r.imageExists(`${host}/team/app:v1`, ctx)).toBe(false);
    expect(tokens).toBe(2);
  });
});

describe('OCI registry failures', () => {
  it('5xx and 429 are retryable and name the host and status', async () => {
    for (const status of [503, 500, 429]) {
      serve((_req, res) => res.writeHead(status).end());
      const error = await rejection(registry().imageExists(`${host}/team/app:v1`, ctx));
      expect(error.code).toBe('registry.unavailable');
      expect(error.retryable).toBe(true);
      expect(error.message).toBe(`registry ${host} answered HTTP ${status} to HEAD /v2/team/app/manifests/v1`);
    }
  });

  it('another status is a protocol error, not retried', async () => {
    serve((_req, res) => res.writeHead(400).end());
    const error = await rejection(registry().imageExists(`${host}/team/app:v1`, ctx));
    expect(error.code).toBe('registry.protocol');
    expect(error.retryable).toBe(false);
  });

  it('403 is RegistryAuth naming the user and repository', async () => {
    serve((_req, res) => res.writeHead(403).end());
    const error = await rejection(registry({ credentials: { username: 'u', password: 'secret-pw' } }).imageExists(`${host}/team/app:v1`, ctx));
    expect(error.category).toBe('RegistryAuth');
    expect(error.message).toBe(`registry ${host} denied an anonymous client access to team/app (HTTP 403)`);
  });

  it('a 401 without a usable challenge, or with a malformed one, says so', async () => {
    serve((_req, res) => res.writeHead(401).end());
    const none = await rejection(registry().imageExists(`${host}/team/app:v1`, ctx));
    expect(none.category).toBe('RegistryAuth');
    expect(none.message).toContain('without a Basic or Bearer challenge (found null)');

    serve((_req, res) => res.writeHead(401, { 'www-authenticate': 'Bearer realm="unterminated' }).end());
    const malformed = await rejection(registry().imageExists(`${host}/team/app:v1`, ctx));
    expect(malformed.code).toBe('registry.protocol');
    expect(malformed.message).toContain('unterminated quoted string');

    serve((_req, res) => res.writeHead(401, { 'www-authenticate': 'Bearer realm="ftp://x/token"' }).end());
    expect((await rejection(registry().imageExists(`${host}/team/app:v1`, ctx))).message).toContain('without an http(s) realm (found "ftp://x/token")');
  });

  it('a token server answering garbage, no token or 5xx is reported without echoing its body', async () => {
    const challenge = { 'www-authenticate': `Bearer realm="http://127.0.0.1:${host.split(':')[1]}/token",service="s"` };
    for (const [status, body, expected] of [
      [200, 'not json at all: secret-body', 'answered with something that is not JSON'],
      [200, JSON.stringify({ tokn: 'x' }), 'answered without a "token" or "access_token" string'],
      [502, '', 'answered HTTP 502'],
    ] as const) {
      serve((req, res) => {
        if (req.url?.startsWith('/token')) res.writeHead(status).end(body);
        else res.writeHead(401, challenge).end();
      });
      const error = await rejection(registry().imageExists(`${host}/team/app:v1`, ctx));
      expect(error.message).toContain(expected);
      expect(error.message).not.toContain('secret-body');
      expect(error.retryable).toBe(status === 502);
    }
  });

  it('refuses to send credentials to a plain-HTTP token realm off the loopback', async () => {
    serve((_req, res) => res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://auth.example.invalid/token"' }).end());
    const error = await rejection(registry({ credentials: { username: 'u', password: 'p' } }).imageExists(`${host}/team/app:v1`, ctx));
    expect(error.category).toBe('RegistryAuth');
    expect(error.message).toContain('plain-HTTP token realm auth.example.invalid; refusing to send credentials there');
  });

  it('an unreachable registry is retryable and names the host and cause', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await rejection(createOciRegistry({ uri: `127.0.0.1:${port}/a`, useDockerConfig: false }).imageExists(`127.0.0.1:${port}/a:v1`, ctx));
    expect(error.code).toBe('registry.unavailable');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain(`registry 127.0.0.1:${port} did not answer HEAD /v2/a/manifests/v1: 127.0.0.1:${port} ECONNREFUSED`);
  });

  it('a cancelled call ends with registry.cancelled', async () => {
    const pending: ServerResponse[] = [];
    serve((_req, res) => pending.push(res));
    const controller = new AbortController();
    const call = registry().imageExists(`${host}/team/app:v1`, { logger: silentLogger, signal: controller.signal });
    await expect.poll(() => pending.length).toBe(1);
    controller.abort();
    const error = await rejection(call);
    expect(error.code).toBe('registry.cancelled');
    pending.forEach((res) => res.destroy());
  });
});
