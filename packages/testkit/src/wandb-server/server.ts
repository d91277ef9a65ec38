import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSchema, createYoga } from 'graphql-yoga';
import { createArtifactResolvers, type ArtifactContext } from './artifact-resolvers.js';
import {
  createArtifactStore,
  type ArtifactStore,
  type ArtifactVersionRecord,
  type DownloadFault,
  type PublishArtifactInit,
  type RecordedDownload,
} from './artifacts.js';
import { createFaultInjector, type FaultInjector } from './faults.js';
import { publishCode, publishJob, type PublishCodeInit, type PublishJobInit } from './jobs.js';
import { createResolvers } from './resolvers.js';
import { serveStorage } from './storage.js';
import { wandbLaunchSchemaSDL } from './schema.js';
import { createWandbState, type ItemRecord, type QueueInit, type UserInit, type WandbState } from './state.js';

export interface WandbTestServerOptions {
  /** Users and their API keys. Default: one user `tester` (entity `tester`) with {@link DEFAULT_TEST_API_KEY}. */
  users?: UserInit[];
  /** Entities that are teams (`entity.isTeam`). Each needs a member among `users`. */
  teams?: string[];
  queues?: QueueInit[];
  /** A popped, unacknowledged item returns to its queue after this long. Default 60 000 ms (W&B: about a minute). */
  leaseTimeoutMs?: number;
  now?: () => number;
  host?: string;
  port?: number;
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

/** One HTTP request the server saw. */
export interface RecordedRequest {
  at: number;
  operation: string | undefined;
  status: number;
  /** Set when an injected fault hit it. With `lost-reply` the operation ran and `status` is what it would have answered. */
  fault?: number | 'reset' | 'lost-reply';
  /** The Authorization header's scheme and user (`Basic api`), never the key. */
  auth: string | undefined;
}

export interface WandbTestServer {
  /** Base URL to give clients as `baseUrl` (no `/graphql`). */
  url: string;
  graphqlUrl: string;
  /** The first user's API key. */
  apiKey: string;
  state: WandbState;
  faults: FaultInjector;
  /** Every request in arrival order, faulted ones included. */
  requests: RecordedRequest[];
  /** How many requests named this GraphQL operation (e.g. `popFromRunQueue`), faulted ones included; all requests without an argument. */
  countRequests(operation?: string): number;
  /** Items of a queue in the order they were pushed. */
  itemsOf(entity: string, queue: string, project?: string): ItemRecord[];
  /** Resolves with `check()`'s first truthy result, re-checked on every state change; rejects after `timeoutMs`. */
  waitFor<T>(check: () => T | undefined | null | false, timeoutMs?: number, what?: string): Promise<T>;
  /** The artifact model: versions, aliases, signed URLs, download faults and the download record. */
  artifacts: ArtifactStore;
  /** Publishes a new version of an artifact (`latest` moves to it). */
  publishArtifact(init: PublishArtifactInit): Promise<ArtifactVersionRecord>;
  /** Publishes a new version of a `job` artifact (`wandb-job.json`, `requirements.frozen.txt`, `diff.patch`). */
  publishJob(init: PublishJobInit): Promise<ArtifactVersionRecord>;
  /** Publishes a new version of a `code` artifact. */
  publishCode(init: PublishCodeInit): Promise<ArtifactVersionRecord>;
  /** Deletes an artifact version (state `DELETED`, aliases dropped). */
  deleteArtifact(id: string): void;
  /** Makes the next signed-URL file downloads fail (`cut` mid-stream, `corrupt` one byte, or a status). */
  addDownloadFault(fault: DownloadFault): void;
  /** Every signed-URL download (manifests and files) in arrival order. */
  downloads: RecordedDownload[];
  /** File downloads (manifests not counted), optionally of one artifact version. */
  countFileDownloads(artifactId?: string): number;
  close(): Promise<void>;
}

/** A 40-character key like W&B's. */
export const DEFAULT_TEST_API_KEY = 'local-0123456789abcdef0123456789abcdef0123';

function operationOf(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const b = body as { operationName?: unknown; query?: unknown };
  if (typeof b.operationName === 'string' && b.operationName) return b.operationName;
  if (typeof b.query === 'string') {
    const m = /\b(?:query|mutation)\s+([_A-Za-z][_0-9A-Za-z]*)/.exec(b.query);
    if (m) return m[1];
    // An anonymous document: name it by its first field.
    const f = /^\s*(?:query|mutation)?\s*\{\s*([_A-Za-z][_0-9A-Za-z]*)/.exec(b.query);
    return f?.[1];
  }
  return undefined;
}

function apiKeyOf(header: string | undefined): { key?: string; shown?: string } {
  if (!header) return {};
  const m = /^Basic\s+(.+)$/i.exec(header.trim());
  if (!m) return { shown: header.split(' ')[0] };
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return { shown: 'Basic' };
  return { key: decoded.slice(colon + 1), shown: `Basic ${decoded.slice(0, colon)}` };
}

/**
 * Starts a W&B Launch API test server: GraphQL over real HTTP(S) at `/graphql`, HTTP basic auth
 * (`api:<key>`) as W&B checks it, W&B's queue semantics and injectable faults. See README.md in
 * this folder for what it covers and what it does not.
 */
export async function createWandbTestServer(options: WandbTestServerOptions = {}): Promise<WandbTestServer> {
  const users = options.users ?? [{ apiKey: DEFAULT_TEST_API_KEY, username: 'tester' }];
  const state = createWandbState({
    users,
    ...(options.teams ? { teams: options.teams } : {}),
    ...(options.queues ? { queues: options.queues } : {}),
    ...(options.leaseTimeoutMs === undefined ? {} : { leaseTimeoutMs: options.leaseTimeoutMs }),
    ...(options.now ? { now: options.now } : {}),
  });
  const faults = createFaultInjector();
  const requests: RecordedRequest[] = [];
  const artifacts = createArtifactStore({ ...(options.now ? { now: options.now } : {}), changed: () => state.events.emit('change') });
  let baseUrl = '';
  const yoga = createYoga<ArtifactContext>({
    schema: createSchema({ typeDefs: wandbLaunchSchemaSDL, resolvers: [createResolvers(state), createArtifactResolvers(state, artifacts)] }),
    graphqlEndpoint: '/graphql',
    maskedErrors: false,
    logging: false,
    landingPage: false,
    graphiql: false,
  });

  const handler = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    // Signed URLs are object storage, not the API: no key, no GraphQL faults, their own record.
    if ((req.url ?? '').startsWith('/storage/')) {
      req.resume();
      await serveStorage(artifacts, req, res);
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      body = undefined;
    }
    const operation = operationOf(body);
    const auth = apiKeyOf(req.headers.authorization);
    const record: RecordedRequest = { at: Date.now(), operation, status: 0, auth: auth.shown };
    requests.push(record);
    const json = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(payload));
    };

    // Faults come first, as a load balancer's would; `lost-reply` lets the operation run.
    const fault = faults.take(operation);
    const loseReply = fault?.status === 'lost-reply';
    if (fault && !loseReply) {
      record.fault = fault.status;
      if (fault.status === 'reset') {
        record.status = -1;
        req.socket.destroy();
        return;
      }
      const headers: Record<string, string> = fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) };
      json(fault.status as number, { errors: [{ message: `injected fault ${fault.status}` }] }, headers);
      return;
    }
    if (loseReply) record.fault = 'lost-reply';
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/graphql') {
      json(404, { errors: [{ message: `no route ${path}` }] });
      return;
    }
    const user = auth.key === undefined ? undefined : state.userForKey(auth.key);
    if (!user) {
      json(401, { errors: [{ message: 'Unauthorized: the API key is missing or not valid' }] }, { 'www-authenticate': 'Basic realm="wandb"' });
      return;
    }
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
    const response = await yoga.fetch(
      `http://localhost${req.url ?? '/graphql'}`,
      { method: req.method ?? 'POST', headers, ...(raw.length > 0 ? { body: raw } : {}) },
      { user, baseUrl },
    );
    record.status = response.status;
    if (loseReply) {
      // The operation ran (the resolvers are synchronous on the state); the answer never leaves.
      await response.arrayBuffer();
      req.socket.destroy();
      return;
    }
    const out: Record<string, string> = {};
    response.headers.forEach((v, k) => (out[k] = v));
    res.writeHead(response.status, out);
    res.end(Buffer.from(await response.arrayBuffer()));
  };

  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    handler(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ message: `test server bug: ${e instanceof Error ? e.message : String(e)}` }] }));
    });
  };
  const server = options.tls ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, listener) : http.createServer(listener);
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  await once(server, 'listening');
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  const url = `${options.tls ? 'https' : 'http'}://${options.host === 'localhost' ? 'localhost' : host}:${port}`;
  baseUrl = url;

  return {
    url,
    graphqlUrl: `${url}/graphql`,
    apiKey: users[0]!.apiKey,
    state,
    faults,
    requests,
    countRequests(operation) {
      return operation === undefined ? requests.length : requests.filter((r) => r.operation === operation).length;
    },
    itemsOf(entity, queue, project = 'model-registry') {
      const q = state.queueByName(entity, project, queue);
      return [...state.items.values()].filter((i) => i.queueId === q.id).sort((a, b) => a.seq - b.seq);
    },
    waitFor<T>(check: () => T | undefined | null | false, timeoutMs = 15_000, what = 'condition'): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const test = () => {
          const v = check();
          if (v) {
            cleanup();
            resolve(v);
          }
        };
        // Lease expiry is time-based, so re-check on a slow tick as well as on every change.
        const tick = setInterval(test, 100);
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`test server: timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
        const cleanup = () => {
          clearInterval(tick);
          clearTimeout(timer);
          state.events.off('change', test);
        };
        state.events.on('change', test);
        test();
      });
    },
    artifacts,
    publishArtifact: (init) => artifacts.publish(init),
    publishJob: (init) => publishJob(artifacts, init),
    publishCode: (init) => publishCode(artifacts, init),
    deleteArtifact: (id) => artifacts.remove(id),
    addDownloadFault: (fault) => artifacts.addDownloadFault(fault),
    downloads: artifacts.downloads,
    countFileDownloads: (artifactId) => artifacts.countFileDownloads(artifactId),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
