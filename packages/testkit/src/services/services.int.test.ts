import Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { dockerService, registryServices, serviceAvailable } from './env.js';

const docker = dockerService();
const registries = registryServices();
const basicHeader = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** The parameters of a `WWW-Authenticate: Bearer k="v",…` challenge. */
function bearerParams(header: string | null): Record<string, string> {
  expect(header).toMatch(/^Bearer /);
  return Object.fromEntries([...header!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

describe.runIf(serviceAvailable('the test Docker engine', !!docker))('shared Docker engine', () => {
  it('answers /_ping and runs echo from the base image with no network', async () => {
    const client = new Docker({ socketPath: docker!.socketPath });
    expect(String(await client.ping())).toBe('OK');
    const image = await client.getImage(docker!.baseImage).inspect();
    expect(image.RepoTags).toContain(docker!.baseImage);
    const container = await client.createContainer({
      Image: docker!.baseImage,
      Cmd: ['sh', '-c', 'echo hello from $(id -un); ls /sys/class/net'],
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      await container.start();
      const result = (await container.wait()) as { StatusCode: number };
      expect(result.StatusCode).toBe(0);
      const logs = (await container.logs({ stdout: true, stderr: true, follow: false })) as Buffer;
      // Multiplexed stream: 8-byte frame headers before each chunk.
      const text = demux(logs);
      expect(text).toContain('hello from root');
      // Network none: only the loopback interface.
      expect(text.trim().split('\n').slice(1)).toEqual(['lo']);
    } finally {
      await container.remove({ force: true });
    }
  });
});

function demux(buffer: Buffer): string {
  let out = '';
  for (let i = 0; i + 8 <= buffer.length; ) {
    const size = buffer.readUInt32BE(i + 4);
    out += buffer.subarray(i + 8, i + 8 + size).toString('utf8');
    i += 8 + size;
  }
  return out;
}

describe.runIf(serviceAvailable('the test registries', !!registries))('shared Distribution registries', () => {
  it('the plain registry answers GET /v2/ with 200', async () => {
    const res = await fetch(`http://${registries!.plain}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  });

  it('the Basic registry challenges, refuses a wrong password and accepts the right one', async () => {
    const url = `http://${registries!.basic}/v2/`;
    const anonymous = await fetch(url);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic realm="basic"/);
    const wrong = await fetch(url, { headers: { authorization: basicHeader(registries!.username, 'wrong') } });
    expect(wrong.status).toBe(401);
    const right = await fetch(url, { headers: { authorization: basicHeader(registries!.username, registries!.password) } });
    expect(right.status).toBe(200);
  });

  it('the Bearer registry: challenge, token with credentials, then 200; wrong password refused at the realm', async () => {
    const url = `http://${registries!.bearer}/v2/`;
    const challenge = await fetch(url);
    expect(challenge.status).toBe(401);
    const params = bearerParams(challenge.headers.get('www-authenticate'));
    expect(params.realm).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/token$/);
    expect(params.service).toBeTruthy();

    const tokenUrl = `${params.realm}?service=${encodeURIComponent(params.service!)}`;
    const refused = await fetch(tokenUrl, { headers: { authorization: basicHeader(registries!.username, 'wrong') } });
    expect(refused.status).toBe(401);

    const granted = await fetch(tokenUrl, { headers: { authorization: basicHeader(registries!.username, registries!.password) } });
    expect(granted.status).toBe(200);
    const body = (await granted.json()) as { token: string; expires_in: number };
    expect(body.expires_in).toBeGreaterThan(0);
    const ok = await fetch(url, { headers: { authorization: `Bearer ${body.token}` } });
    expect(ok.status).toBe(200);

    // A token the registry did not sign is refused.
    const [head, claims] = body.token.split('.');
    const forged = await fetch(url, { headers: { authorization: `Bearer ${head}.${claims}.${Buffer.from('forged').toString('base64url')}` } });
    expect(forged.status).toBe(401);
  });

  it('the Bearer registry grants a repository scope to credentials but not to an anonymous token', async () => {
    const manifest = `http://${registries!.bearer}/v2/services-test/none/manifests/latest`;
    const challenge = await fetch(manifest, { method: 'HEAD' });
    expect(challenge.status).toBe(401);
    const params = bearerParams(challenge.headers.get('www-authenticate'));
    expect(params.scope).toBe('repository:services-test/none:pull');
    const tokenUrl = `${params.realm}?service=${encodeURIComponent(params.service!)}&scope=${encodeURIComponent(params.scope!)}`;

    const anonymous = (await (await fetch(tokenUrl)).json()) as { token: string };
    const denied = await fetch(manifest, { method: 'HEAD', headers: { authorization: `Bearer ${anonymous.token}` } });
    expect(denied.status).toBe(401);

    const authed = (await (await fetch(tokenUrl, { headers: { authorization: basicHeader(registries!.username, registries!.password) } })).json()) as {
      token: string;
    };
    const missing = await fetch(manifest, { method: 'HEAD', headers: { authorization: `Bearer ${authed.token}` } });
    // Authorised now: the repository simply has no such manifest.
    expect(missing.status).toBe(404);
  });
});
