import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestJwtSigner } from './jwt.js';
import type { TestTls } from './tls.js';

/** AAD audiences ACR accepts in `/oauth2/exchange`. */
const AAD_AUDIENCES = ['https://management.azure.com', 'https://management.azure.com/', 'https://containerregistry.azure.net'];
const ZERO_USER = '00000000-0000-0000-0000-000000000000';

export interface RunningAcr {
  /** `https://127.0.0.1:<port>`: the registry's `endpoint` override in tests. */
  endpoint: string;
  /** The registry's login server name, the `service` of its tokens (e.g. `launchtest.azurecr.io`). */
  loginServer: string;
  /** Stores a manifest under `repository:tag` (what a push leaves behind); returns its digest. */
  putManifest(repository: string, tag: string): string;
  /** Requests per endpoint (`exchange`, `token`, `manifest`), to check caching. */
  readonly counts: Record<'exchange' | 'token' | 'manifest', number>;
  /** The refresh tokens `/oauth2/exchange` issued, in order. */
  readonly refreshTokens: string[];
  close(): Promise<void>;
}

async function form(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(value));
}

/**
 * A minimal Azure Container Registry over HTTPS: the AAD-to-ACR token exchange (`POST /oauth2/exchange`,
 * `grant_type=access_token`), ACR access tokens (`POST /oauth2/token` with `grant_type=refresh_token`,
 * and `GET /oauth2/token` with Basic `00000000-…:<refresh token>` as docker login does), the `/v2/`
 * challenge and manifest HEAD/GET with bearer tokens scoped `repository:<repo>:pull`. AAD tokens
 * are checked with `signer` (the test AAD server's). See README.md for what it does not cover.
 */
export async function startAcr(options: {
  tls: TestTls;
  signer: TestJwtSigner;
  loginServer: string;
  refreshLifetimeSeconds?: number;
  accessLifetimeSeconds?: number;
}): Promise<RunningAcr> {
  const { signer, loginServer } = options;
  const manifests = new Map<string, { digest: string; body: string }>();
  const counts = { exchange: 0, token: 0, manifest: 0 };
  const refreshTokens: string[] = [];
  const realm = `https://${loginServer}/oauth2/token`;
  const unauthorized = (res: ServerResponse, message: string, scope?: string) =>
    send(
      res,
      401,
      { errors: [{ code: 'UNAUTHORIZED', message, detail: null }] },
      { 'www-authenticate': `Bearer realm="${realm}",service="${loginServer}"${scope ? `,scope="${scope}"` : ''}` },
    );

  const accessToken = (refreshToken: string | null, scopes: string[], res: ServerResponse, service: string | null) => {
    counts.token++;
    if (service !== loginServer)
      return send(res, 400, { errors: [{ code: 'BAD_REQUEST', message: `service ${service ?? ''} does not match ${loginServer}` }] });
    const refresh = refreshToken ? signer.verify(refreshToken) : undefined;
    if (!refresh || refresh.grant_type !== 'refresh_token' || refresh.aud !== loginServer)
      return unauthorized(res, 'authentication required, visit https://aka.ms/acr/authorization for more information.');
    const access = scopes
      .map((s) => /^repository:([a-z0-9._/-]+):([a-z,*]+)$/.exec(s))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ type: 'repository', name: m[1], actions: m[2]!.split(',').filter((a) => a === 'pull' || a === 'push') }));
    const now = Math.floor(Date.now() / 1000);
    const token = signer.sign({
      jti: `${now}-${counts.token}`,
      sub: refresh.sub,
      nbf: now,
      iat: now,
      exp: now + (options.accessLifetimeSeconds ?? 4500),
      iss: 'Azure Container Registry',
      aud: loginServer,
      version: '1.0',
      grant_type: 'access_token',
      access,
    });
    send(res, 200, { access_token: token });
  };

  let base = '';
  const server = createServer({ cert: options.tls.cert, key: options.tls.key }, (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', base);
      const path = url.pathname;
      if (path === '/oauth2/exchange' && req.method === 'POST') {
        counts.exchange++;
        const body = await form(req);
        if (body.get('grant_type') !== 'access_token')
          return send(res, 400, { errors: [{ code: 'BAD_REQUEST', message: `unsupported grant_type ${body.get('grant_type') ?? ''}` }] });
        if (body.get('service') !== loginServer)
          return send(res, 400, { errors: [{ code: 'BAD_REQUEST', message: `service ${body.get('service') ?? ''} does not match ${loginServer}` }] });
        const aad = signer.verify(body.get('access_token') ?? '');
        if (!aad || !AAD_AUDIENCES.includes(String(aad.aud))) return unauthorized(res, 'the access token is invalid or expired, or has the wrong audience');
        const tenant = body.get('tenant');
        if (tenant && tenant !== aad.tid) return unauthorized(res, `the access token is not for tenant ${tenant}`);
        const now = Math.floor(Date.now() / 1000);
        const refresh = signer.sign({
          jti: `r-${refreshTokens.length}`,
          sub: aad.oid,
          tenant: aad.tid,
          nbf: now,
          iat: now,
          exp: Math.min(Number(aad.exp) + 3 * 3600, now + (options.refreshLifetimeSeconds ?? 3 * 3600)),
          iss: 'Azure Container Registry',
          aud: loginServer,
          version: '1.0',
          grant_type: 'refresh_token',
          permissions: { actions: ['read', 'write'] },
        });
        refreshTokens.push(refresh);
        return send(res, 200, { refresh_token: refresh });
      }
      if (path === '/oauth2/token' && req.method === 'POST') {
        const body = await form(req);
        if (body.get('grant_type') !== 'refresh_token')
          return send(res, 400, { errors: [{ code: 'BAD_REQUEST', message: `unsupported grant_type ${body.get('grant_type') ?? ''}` }] });
        return accessToken(
          body.get('refresh_token'),
          body.getAll('scope').flatMap((s) => s.split(' ')),
          res,
          body.get('service'),
        );
      }
      if (path === '/oauth2/token' && req.method === 'GET') {
        const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
        const [user, password] = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8').split(/:(.*)/s) : [];
        if (user !== ZERO_USER) return unauthorized(res, 'authentication required');
        return accessToken(password ?? null, url.searchParams.getAll('scope'), res, url.searchParams.get('service'));
      }
      if (path === '/v2/' || path === '/v2') return unauthorized(res, 'authentication required, visit https://aka.ms/acr/authorization for more information.');
      const m = /^\/v2\/([a-z0-9._/-]+)\/manifests\/([^/]+)$/.exec(path);
      if (m && (req.method === 'GET' || req.method === 'HEAD')) {
        counts.manifest++;
        const [, repository, reference] = m;
        const scope = `repository:${repository}:pull`;
        const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
        const claims = bearer ? signer.verify(bearer[1]!) : undefined;
        const allowed =
          claims?.grant_type === 'access_token' &&
          claims.aud === loginServer &&
          Array.isArray(claims.access) &&
          (claims.access as Array<{ name: string; actions: string[] }>).some((a) => a.name === repository && a.actions.includes('pull'));
        if (!allowed) return unauthorized(res, 'authentication required, visit https://aka.ms/acr/authorization for more information.', scope);
        const found = reference!.startsWith('sha256:')
          ? [...manifests.entries()].find(([k, v]) => k.startsWith(`${repository}:`) && v.digest === reference)?.[1]
          : manifests.get(`${repository}:${reference}`);
        if (!found)
          return send(res, 404, {
            errors: [{ code: 'MANIFEST_UNKNOWN', message: `manifest tagged by "${reference}" is not found`, detail: { Tag: reference } }],
          });
        res.writeHead(200, {
          'content-type': 'application/vnd.docker.distribution.manifest.v2+json',
          'docker-content-digest': found.digest,
          'content-length': String(Buffer.byteLength(found.body)),
        });
        return res.end(req.method === 'HEAD' ? undefined : found.body);
      }
      send(res, 404, { errors: [{ code: 'NOT_FOUND', message: `no such endpoint ${req.method} ${path}` }] });
    })().catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, { errors: [{ code: 'INTERNAL', message: String(error) }] });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint: base,
    loginServer,
    counts,
    refreshTokens,
    putManifest(repository, tag) {
      const body = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: 2, digest: `sha256:${'1'.repeat(64)}` },
        layers: [],
        annotations: { tag },
      });
      const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      manifests.set(`${repository}:${tag}`, { digest, body });
      return digest;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
