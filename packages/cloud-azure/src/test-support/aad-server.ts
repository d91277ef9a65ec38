import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { TestJwtSigner } from './jwt.js';
import type { TestTls } from './tls.js';

/** A registered application: its tenant, client id and secret, and the object id its tokens carry. */
export interface AadApp {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  objectId?: string;
}

export interface RunningAad {
  /** `https://127.0.0.1:<port>`: the `authorityHost` to give `ClientSecretCredential`. */
  authorityHost: string;
  /** Tokens issued so far (the credential's cache means one per scope and app). */
  readonly issued: Array<{ clientId: string; scope: string }>;
  close(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(value));
}

function aadError(res: ServerResponse, status: number, error: string, code: number, description: string): void {
  json(res, status, {
    error,
    error_description: `AADSTS${code}: ${description} Trace ID: ${randomUUID()} Correlation ID: ${randomUUID()} Timestamp: ${new Date().toISOString()}`,
    error_codes: [code],
    timestamp: new Date().toISOString(),
    trace_id: randomUUID(),
    correlation_id: randomUUID(),
  });
}

/**
 * A minimal Microsoft identity platform (Azure AD v2.0) over HTTPS for `ClientSecretCredential`
 * with `authorityHost` set to it (and `disableInstanceDiscovery`): the tenant's OpenID
 * configuration, instance discovery, and the token endpoint's client-credentials grant. Tokens are
 * JWTs signed by `signer` with `aud` (the scope's resource), `tid`, `oid`, `appid`, `iat`, `exp`.
 * Wrong secrets, unknown clients, unknown tenants and scopes without `/.default` get AAD's errors.
 */
export async function startAad(options: { tls: TestTls; signer: TestJwtSigner; apps: AadApp[]; lifetimeSeconds?: number }): Promise<RunningAad> {
  const issued: RunningAad['issued'] = [];
  const lifetime = options.lifetimeSeconds ?? 3599;
  let base = '';
  const server = createServer({ cert: options.tls.cert, key: options.tls.key }, (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', base);
      const parts = url.pathname.split('/').filter(Boolean);
      const tenant = parts[0] ?? '';
      const knownTenant = options.apps.some((a) => a.tenantId === tenant);
      if (req.method === 'GET' && parts[0] === 'common' && parts[1] === 'discovery' && parts[2] === 'instance') {
        const host = new URL(base).host;
        return json(res, 200, {
          tenant_discovery_endpoint: `${base}/{tenant}/v2.0/.well-known/openid-configuration`,
          'api-version': '1.1',
          metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
        });
      }
      if (req.method === 'GET' && parts.slice(1).join('/') === 'v2.0/.well-known/openid-configuration') {
        if (!knownTenant) return aadError(res, 400, 'invalid_tenant', 90002, `Tenant '${tenant}' not found.`);
        return json(res, 200, {
          token_endpoint: `${base}/${tenant}/oauth2/v2.0/token`,
          token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
          jwks_uri: `${base}/${tenant}/discovery/v2.0/keys`,
          response_modes_supported: ['query', 'fragment', 'form_post'],
          subject_types_supported: ['pairwise'],
          id_token_signing_alg_values_supported: ['RS256'],
          response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
          scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
          issuer: `${base}/${tenant}/v2.0`,
          authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/authorize`,
          device_authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/devicecode`,
          end_session_endpoint: `${base}/${tenant}/oauth2/v2.0/logout`,
          tenant_region_scope: null,
          cloud_instance_name: 'microsoftonline.com',
        });
      }
      if (req.method === 'POST' && parts.slice(1).join('/') === 'oauth2/v2.0/token') {
        const form = await body(req);
        if (!knownTenant) return aadError(res, 400, 'invalid_request', 90002, `Tenant '${tenant}' not found.`);
        if (form.get('grant_type') !== 'client_credentials')
          return aadError(res, 400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
        const app = options.apps.find((a) => a.tenantId === tenant && a.clientId === form.get('client_id'));
        if (!app)
          return aadError(
            res,
            400,
            'unauthorized_client',
            700016,
            `Application with identifier '${form.get('client_id') ?? ''}' was not found in the directory '${tenant}'.`,
          );
        if (form.get('client_secret') !== app.clientSecret)
          return aadError(
            res,
            401,
            'invalid_client',
            7000215,
            'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.',
          );
        const scope = (form.get('scope') ?? '').split(' ').find((s) => s.endsWith('/.default'));
        if (!scope)
          return aadError(
            res,
            400,
            'invalid_scope',
            1002012,
            `The provided value for scope ${form.get('scope') ?? ''} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.`,
          );
        const now = Math.floor(Date.now() / 1000);
        const aud = scope.slice(0, -'/.default'.length);
        issued.push({ clientId: app.clientId, scope });
        const token = options.signer.sign({
          aud,
          iss: `https://sts.windows.net/${tenant}/`,
          iat: now,
          nbf: now,
          exp: now + lifetime,
          tid: tenant,
          oid: app.objectId ?? app.clientId,
          appid: app.clientId,
          sub: app.objectId ?? app.clientId,
        });
        return json(res, 200, { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: token });
      }
      return aadError(res, 404, 'not_found', 90000, `no such endpoint ${req.method} ${url.pathname}`);
    })().catch((error: unknown) => {
      if (!res.headersSent) json(res, 500, { error: 'server_error', error_description: String(error) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    authorityHost: base,
    issued,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
