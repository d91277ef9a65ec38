import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TokenCheck } from './gcs-server.js';

export interface GarTestServer {
  /** `http://127.0.0.1:<port>`: the registry's `endpoint` option (the host in image names stays `<region>-docker.pkg.dev`). */
  readonly endpoint: string;
  /** Creates `<project>/<repository>`; principals in `deny` get 403 on it (no `artifactregistry.repositories.downloadArtifacts`). */
  addRepository(project: string, repository: string, options?: { deny?: string[] }): void;
  /** Stores a small image manifest as `<project>/<repository>/<image>:<tag>`; returns its digest. */
  putManifest(project: string, repository: string, image: string, tag: string): string;
  /** Manifest requests seen (HEAD or GET). */
  readonly manifestRequests: number;
  close(): Promise<void>;
}

function registryError(res: ServerResponse, status: number, code: string, message: string, head: boolean): void {
  const body = JSON.stringify({ errors: [{ code, message }] });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'docker-distribution-api-version': 'registry/2.0',
  });
  res.end(head ? undefined : body);
}

/**
 * A minimal Artifact Registry Docker endpoint (`<region>-docker.pkg.dev`): the Distribution v2 API's
 * `GET /v2/` and `HEAD|GET /v2/<project>/<repository>/<image>/manifests/<tag|digest>`, authorized by
 * an OAuth2 access token sent as `Authorization: Bearer <token>` or as Basic `oauth2accesstoken:<token>`
 * (both as Artifact Registry accepts them). No or an invalid token: 401 `UNAUTHORIZED` with a Bearer
 * challenge; a denied principal: 403 `DENIED`; an unknown repository: 404 `NAME_UNKNOWN`; an unknown
 * tag or digest: 404 `MANIFEST_UNKNOWN`.
 */
export async function startGarServer(options: { check: TokenCheck }): Promise<GarTestServer> {
  const repositories = new Map<string, { deny: string[]; manifests: Map<string, { digest: string; body: Buffer }> }>();
  let manifestRequests = 0;
  let endpoint = '';

  const principal = (req: IncomingMessage): string | undefined => {
    const header = req.headers.authorization ?? '';
    const bearer = /^Bearer (\S+)$/.exec(header);
    if (bearer) return options.check(bearer[1]!)?.email;
    const basic = /^Basic (\S+)$/.exec(header);
    if (basic) {
      const [user, ...rest] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      if (user === 'oauth2accesstoken') return options.check(rest.join(':'))?.email;
    }
    return undefined;
  };

  const server = createServer((req, res) => {
    req.resume();
    const head = req.method === 'HEAD';
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const who = principal(req);
    if (!who) {
      res.setHeader('www-authenticate', `Bearer realm="${endpoint}/v2/token",service="${endpoint.replace(/^http:\/\//, '')}"`);
      return registryError(res, 401, 'UNAUTHORIZED', 'authentication failed', head);
    }
    if (path === '/v2/' && (req.method === 'GET' || head)) {
      res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' });
      return res.end(head ? undefined : '{}');
    }
    const m = /^\/v2\/([a-z][a-z0-9-]*)\/([a-z0-9][a-z0-9._-]*)\/(.+)\/manifests\/([^/]+)$/.exec(path);
    if (m && (req.method === 'GET' || head)) {
      manifestRequests++;
      const [, project, repository, image, reference] = m as unknown as [string, string, string, string, string];
      const repo = repositories.get(`${project}/${repository}`);
      if (!repo) return registryError(res, 404, 'NAME_UNKNOWN', `Repository "${repository}" not found`, head);
      if (repo.deny.includes(who))
        return registryError(
          res,
          403,
          'DENIED',
          `Permission "artifactregistry.repositories.downloadArtifacts" denied on resource "projects/${project}/locations/-/repositories/${repository}" (or it may not exist)`,
          head,
        );
      const manifest = repo.manifests.get(`${image}:${decodeURIComponent(reference)}`);
      if (!manifest) return registryError(res, 404, 'MANIFEST_UNKNOWN', `Requested entity was not found.`, head);
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'content-length': String(manifest.body.length),
        'docker-content-digest': manifest.digest,
        'docker-distribution-api-version': 'registry/2.0',
      });
      return res.end(head ? undefined : manifest.body);
    }
    registryError(res, 404, 'NOT_FOUND', `not served by the GAR test server: ${req.method} ${path}`, head);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    endpoint,
    get manifestRequests() {
      return manifestRequests;
    },
    addRepository(project, repository, opts = {}) {
      repositories.set(`${project}/${repository}`, { deny: opts.deny ?? [], manifests: new Map() });
    },
    putManifest(project, repository, image, tag) {
      const repo = repositories.get(`${project}/${repository}`);
      if (!repo) throw new Error(`no repository ${project}/${repository}`);
      const body = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: 2, digest: `sha256:${'1'.repeat(64)}` },
          layers: [],
          annotations: { tag },
        }),
      );
      const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      repo.manifests.set(`${image}:${tag}`, { digest, body });
      repo.manifests.set(`${image}:${digest}`, { digest, body });
      return digest;
    },
    async close() {
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
