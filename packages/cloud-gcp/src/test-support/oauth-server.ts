import { createPublicKey, createVerify, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Google's token URLs a service-account JWT may name as its audience (google-auth-library sends one of them). */
const GOOGLE_AUDIENCES = ['https://www.googleapis.com/oauth2/v4/token', 'https://oauth2.googleapis.com/token'];
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

export interface IssuedToken {
  email: string;
  scope: string;
  expiresAt: number;
}

export interface ServiceAccountKey {
  email: string;
  /** Path of the key-file JSON (`type: service_account`, `token_uri` pointing at this server). */
  path: string;
  /** The key file's `private_key_id`. */
  keyId: string;
}

export interface OAuthTestServer {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** `<endpoint>/token`: the key files' `token_uri`. */
  readonly tokenUri: string;
  /** Creates a service account with a fresh RSA key pair and writes its key file to a temp dir. */
  addServiceAccount(email: string, options?: { projectId?: string }): ServiceAccountKey;
  /** Deletes a key: later grants signed with it are refused with `invalid_grant`, as Google does. */
  deleteKey(keyId: string): void;
  /** Whether `token` is a live access token this server issued; its owner and scope. */
  check(token: string): IssuedToken | undefined;
  /** Makes the next grants return this token instead of a random one (for conformance fixtures). */
  fixToken(token: string | undefined): void;
  /** Token requests answered, successful or not. */
  readonly requests: number;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function b64urlJson(part: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A minimal Google OAuth2 token endpoint for service-account keys (RFC 7523 JWT bearer grant, as
 * `https://oauth2.googleapis.com/token` serves it): `POST /token` with
 * `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`. The JWT must be RS256,
 * signed by a key this server generated (checked against its public key), with `iss` the account's
 * e-mail, `aud` Google's token URL or this server's, `iat`/`exp` around now and at most an hour apart,
 * and a `scope`. Answers `{access_token, expires_in, token_type}`, or Google's `invalid_grant` /
 * `unsupported_grant_type` errors. See README.md for what it does not cover.
 */
export async function startOAuthServer(): Promise<OAuthTestServer> {
  const keys = new Map<string, { email: string; publicKey: KeyObject; deleted: boolean }>();
  const issued = new Map<string, IssuedToken>();
  const dir = mkdtempSync(join(tmpdir(), 'gcp-oauth-'));
  let fixed: string | undefined;
  let requests = 0;
  let endpoint = '';

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const grantError = (res: ServerResponse, description: string, error = 'invalid_grant') => send(res, 400, { error, error_description: description });

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method !== 'POST' || url.pathname !== '/token') return send(res, 404, { error: 'not_found' });
      requests++;
      const body = new URLSearchParams(await readBody(req));
      if (body.get('grant_type') !== JWT_BEARER) return grantError(res, `Invalid grant_type: ${body.get('grant_type') ?? ''}`, 'unsupported_grant_type');
      const assertion = body.get('assertion') ?? '';
      const parts = assertion.split('.');
      if (parts.length !== 3) return grantError(res, 'Invalid JWT: Token must be a short-lived token and in a reasonable timeframe');
      const header = b64urlJson(parts[0]!);
      const claims = b64urlJson(parts[1]!);
      if (!header || !claims || header.alg !== 'RS256') return grantError(res, 'Invalid JWT header.');
      const email = claims.iss;
      const candidates = [...keys.entries()].filter(([id, k]) => k.email === email && (header.kid === undefined || header.kid === id));
      const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
      const signature = Buffer.from(parts[2]!, 'base64url');
      const match = candidates.find(([, k]) => createVerify('RSA-SHA256').update(signed).verify(k.publicKey, signature));
      if (!match) return grantError(res, 'Invalid JWT Signature.');
      if (match[1].deleted) return grantError(res, 'Invalid JWT Signature.');
      const now = Math.floor(Date.now() / 1000);
      const iat = claims.iat;
      const exp = claims.exp;
      if (typeof iat !== 'number' || typeof exp !== 'number' || iat > now + 300 || exp < now || exp - iat > 3600)
        return grantError(
          res,
          'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
        );
      if (typeof claims.aud !== 'string' || ![...GOOGLE_AUDIENCES, `${endpoint}/token`].includes(claims.aud))
        return grantError(res, 'Invalid JWT: Failed audience check.');
      if (typeof claims.scope !== 'string' || claims.scope.trim() === '')
        return grantError(res, 'Invalid OAuth scope or ID token audience provided.', 'invalid_scope');
      const token = fixed ?? `ya29.test-${randomBytes(24).toString('base64url')}`;
      const expiresIn = 3599;
      issued.set(token, { email: email as string, scope: claims.scope, expiresAt: Date.now() + expiresIn * 1000 });
      send(res, 200, { access_token: token, expires_in: expiresIn, token_type: 'Bearer' });
    })().catch(() => {
      if (!res.headersSent) send(res, 500, { error: 'internal' });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    endpoint,
    tokenUri: `${endpoint}/token`,
    get requests() {
      return requests;
    },
    addServiceAccount(email, options = {}) {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const keyId = randomBytes(20).toString('hex');
      keys.set(keyId, { email, publicKey: createPublicKey(publicKey.export({ type: 'spki', format: 'pem' })), deleted: false });
      const file = {
        type: 'service_account',
        project_id: options.projectId ?? 'launch-test-project',
        private_key_id: keyId,
        private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        client_email: email,
        client_id: String(Date.now()),
        auth_uri: `${endpoint}/auth`,
        token_uri: `${endpoint}/token`,
        universe_domain: 'googleapis.com',
      };
      const path = join(dir, `${keyId}.json`);
      writeFileSync(path, JSON.stringify(file, null, 2), { mode: 0o600 });
      return { email, path, keyId };
    },
    deleteKey(keyId) {
      const key = keys.get(keyId);
      if (key) key.deleted = true;
    },
    check(token) {
      const found = issued.get(token);
      return found && found.expiresAt > Date.now() ? found : undefined;
    },
    fixToken(token) {
      fixed = token;
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
