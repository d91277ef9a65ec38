import { execFile } from 'node:child_process';
import { createPrivateKey, randomBytes, sign, timingSafeEqual, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findBinary } from './daemon.js';

const run = promisify(execFile);

/**
 * A Bearer token server for a Distribution registry configured with `auth.token` (Docker's token
 * authentication specification, https://distribution.github.io/distribution/spec/auth/token/).
 */
export interface TokenServer {
  /** The `auth.token.realm` to configure in the registry: `http://127.0.0.1:PORT/token`. */
  readonly realm: string;
  /** The `auth.token.service` (the token's audience). */
  readonly service: string;
  /** The `auth.token.issuer`. */
  readonly issuer: string;
  /** PEM certificate of the signing key: the registry's `auth.token.rootcertbundle`. */
  readonly certificatePath: string;
  /** Tokens issued so far (to a client with the right credentials or anonymously). */
  readonly issued: number;
  close(): Promise<void>;
}

export interface TokenServerOptions {
  /** Where the key and certificate are written. */
  dir: string;
  username: string;
  /** A secret: never logged. */
  password: string;
  service?: string;
  issuer?: string;
  /** Lifetime of a token (`expires_in`). Default 300 s. */
  ttlSeconds?: number;
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/** `repository:team/app:pull,push` → type, name (which may hold colons), actions. */
export function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter(Boolean);
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Starts the token server on 127.0.0.1 with an RSA key and self-signed certificate made now (by the
 * `openssl` binary). At the realm it:
 * - answers `GET` (Basic credentials in `Authorization`, `service`, `scope` repeated) and the OAuth2
 *   `POST` form (`grant_type=password` with `username`/`password`);
 * - refuses wrong credentials (401), an unknown `service` (400), other grant types (400);
 * - grants every requested scope to the right credentials, and an anonymous client a token with no
 *   access at all (so the registry then answers 401 to it, as for a private repository);
 * - signs an RS256 JWT whose header carries the certificate in `x5c`, which the registry checks
 *   against `rootcertbundle`.
 */
export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const openssl = findBinary('openssl');
  if (!openssl) throw new Error('openssl is not installed: the token server needs it to make its certificate');
  const service = options.service ?? 'launch-test-registry';
  const issuer = options.issuer ?? 'launch-testkit-token-server';
  const ttl = options.ttlSeconds ?? 300;
  const keyPath = join(options.dir, 'token-key.pem');
  const certificatePath = join(options.dir, 'token-cert.pem');
  await run(openssl, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-sha256',
    '-days',
    '2',
    '-subj',
    `/CN=${issuer}`,
    '-keyout',
    keyPath,
    '-out',
    certificatePath,
  ]);
  const key: KeyObject = createPrivateKey(readFileSync(keyPath));
  const pem = readFileSync(certificatePath, 'utf8');
  const der = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');

  let issued = 0;

  function token(subject: string, access: Access[]): string {
    const now = Math.floor(Date.now() / 1000);
    const head = { typ: 'JWT', alg: 'RS256', x5c: [der] };
    const claims = { iss: issuer, sub: subject, aud: service, exp: now + ttl, nbf: now - 10, iat: now, jti: randomBytes(12).toString('hex'), access };
    const input = `${b64url(JSON.stringify(head))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
  }

  function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }

  function refuse(res: ServerResponse, status: number, code: string, message: string): void {
    const extra: Record<string, string> = status === 401 ? { 'www-authenticate': `Basic realm="${service}"` } : {};
    reply(res, status, { errors: [{ code, message }] }, extra);
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > 64 * 1024) throw new Error('body too large');
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/token') return refuse(res, 404, 'NOT_FOUND', `no such path ${url.pathname}`);
    let params = url.searchParams;
    let username: string | undefined;
    let password: string | undefined;
    if (req.method === 'POST') {
      params = new URLSearchParams(await readBody(req));
      const grant = params.get('grant_type');
      if (grant !== 'password') return refuse(res, 400, 'UNSUPPORTED', `unsupported grant_type ${JSON.stringify(grant)}: only "password"`);
      username = params.get('username') ?? undefined;
      password = params.get('password') ?? undefined;
    } else if (req.method === 'GET') {
      const auth = req.headers.authorization;
      if (auth) {
        const match = /^Basic\s+(\S+)$/i.exec(auth);
        if (!match) return refuse(res, 401, 'UNAUTHORIZED', 'the Authorization header is not Basic credentials');
        const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0) return refuse(res, 401, 'UNAUTHORIZED', 'the Basic credentials have no colon');
        username = decoded.slice(0, colon);
        password = decoded.slice(colon + 1);
      }
    } else {
      return refuse(res, 405, 'UNSUPPORTED', `method ${req.method} not allowed`);
    }
    if (params.get('service') !== service) {
      return refuse(res, 400, 'INVALID_SERVICE', `unknown service ${JSON.stringify(params.get('service'))}`);
    }
    const anonymous = username === undefined && password === undefined;
    if (!anonymous && !(safeEqual(username ?? '', options.username) && safeEqual(password ?? '', options.password))) {
      return refuse(res, 401, 'UNAUTHORIZED', 'incorrect username or password');
    }
    const access: Access[] = [];
    if (!anonymous) {
      for (const scope of params.getAll('scope').flatMap((s) => s.split(' '))) {
        if (!scope) continue;
        const parsed = parseScope(scope);
        if (!parsed) return refuse(res, 400, 'INVALID_SCOPE', `cannot parse scope ${JSON.stringify(scope)}`);
        access.push(parsed);
      }
    }
    issued++;
    const jwt = token(anonymous ? '' : options.username, access);
    reply(res, 200, { token: jwt, access_token: jwt, expires_in: ttl, issued_at: new Date().toISOString() });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) refuse(res, 400, 'BAD_REQUEST', error instanceof Error ? error.message : String(error));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certificatePath,
    get issued() {
      return issued;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
