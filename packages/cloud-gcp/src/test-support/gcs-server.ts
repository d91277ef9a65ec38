import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CRC32C } from '@google-cloud/storage';

/** Who a bearer token belongs to (the OAuth test server's `check`), or undefined when it is not valid. */
export type TokenCheck = (token: string) => { email: string } | undefined;

export interface GcsBucketOptions {
  /** E-mails of principals denied everything on this bucket (403, as a missing IAM binding gives). */
  deny?: string[];
}

export interface GcsTestServer {
  /** `http://127.0.0.1:<port>`: `@google-cloud/storage`'s `apiEndpoint`. */
  readonly endpoint: string;
  addBucket(name: string, options?: GcsBucketOptions): void;
  /** Object names in a bucket. */
  objects(bucket: string): string[];
  /** Upload sessions begun and not finished. */
  openSessions(): number;
  /** Requests seen, by `<METHOD> <kind>` (`GET bucket`, `POST upload`, `PUT chunk`, `DELETE object`, …). */
  count(kind: string): number;
  close(): Promise<void>;
}

interface StoredObject {
  path: string;
  size: number;
  generation: string;
  md5: string;
  crc32c: string;
  contentType: string;
  updated: string;
}

interface Session {
  bucket: string;
  name: string;
  contentType: string;
  path: string;
  received: number;
  md5: Hash;
  crc: InstanceType<typeof CRC32C>;
  busy: boolean;
}

function googleError(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify({ error: { code, message, errors: [{ message, domain: 'global', reason }] } }));
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 1024 * 1024) return req.destroy(new Error('metadata too large'));
      chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        const value = text ? (JSON.parse(text) as unknown) : {};
        resolve(typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {});
      } catch {
        resolve({});
      }
    });
    req.on('error', reject);
  });
}

/**
 * A minimal Google Cloud Storage JSON API server for `@google-cloud/storage` (through its `apiEndpoint`
 * and `useAuthWithCustomEndpoint` options). Every request needs `Authorization: Bearer <token>` that
 * `check` accepts (else 401). Serves:
 *
 * - `GET /storage/v1/b/<bucket>`: bucket metadata; 404 `notFound` for a missing bucket, 403 `forbidden`
 *   (naming `storage.buckets.get`) for a denied principal;
 * - resumable uploads: `POST /upload/storage/v1/b/<bucket>/o?uploadType=resumable&name=<object>` answers
 *   a session URI in `Location`; `PUT <session>` with `Content-Range: bytes <a>-<b>/<total|*>` appends a
 *   chunk and answers 308 with `Range: bytes=0-<n>` until the total is reached, then 200 with the object
 *   resource (`size`, `md5Hash`, `crc32c`); a `Content-Range` whose byte range is `*` asks for the status;
 * - `GET /storage/v1/b/<bucket>/o/<object>` (metadata, or the bytes with `alt=media` and `x-goog-hash`),
 *   `DELETE` the same (204; 404 `notFound` when missing).
 *
 * Objects and sessions are files in a temp dir: memory stays flat whatever the size.
 */
export async function startGcsServer(options: { check: TokenCheck }): Promise<GcsTestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'gcs-server-'));
  const buckets = new Map<string, { deny: string[]; objects: Map<string, StoredObject> }>();
  const sessions = new Map<string, Session>();
  const counts = new Map<string, number>();
  let endpoint = '';
  let generation = Date.now() * 1000;
  const count = (kind: string) => counts.set(kind, (counts.get(kind) ?? 0) + 1);

  const resource = (bucket: string, name: string, o: StoredObject) => ({
    kind: 'storage#object',
    id: `${bucket}/${name}/${o.generation}`,
    selfLink: `${endpoint}/storage/v1/b/${bucket}/o/${encodeURIComponent(name)}`,
    name,
    bucket,
    generation: o.generation,
    metageneration: '1',
    contentType: o.contentType,
    size: String(o.size),
    md5Hash: o.md5,
    crc32c: o.crc32c,
    storageClass: 'STANDARD',
    timeCreated: o.updated,
    updated: o.updated,
  });

  /** The principal, or an answer already sent. */
  const authorize = (req: IncomingMessage, res: ServerResponse): string | undefined => {
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    const who = m ? options.check(m[1]!) : undefined;
    if (!who) {
      res.setHeader('www-authenticate', 'Bearer realm="https://accounts.google.com/"');
      googleError(res, 401, 'required', 'Anonymous caller does not have storage access, or the access token is invalid.');
      return undefined;
    }
    return who.email;
  };

  /** The bucket, or an answer already sent (404 / 403 naming the permission). */
  const bucketFor = (res: ServerResponse, name: string, who: string, permission: string) => {
    const bucket = buckets.get(name);
    if (!bucket) {
      googleError(res, 404, 'notFound', 'The specified bucket does not exist.');
      return undefined;
    }
    if (bucket.deny.includes(who)) {
      googleError(
        res,
        403,
        'forbidden',
        `${who} does not have ${permission} access to the Google Cloud Storage ${permission.startsWith('storage.buckets') ? 'bucket' : 'object'}. Permission '${permission}' denied on resource (or it may not exist).`,
      );
      return undefined;
    }
    return bucket;
  };

  const handleChunk = async (req: IncomingMessage, res: ServerResponse, id: string) => {
    count('PUT chunk');
    const session = sessions.get(id);
    if (!session) return googleError(res, 404, 'notFound', 'No such upload session.');
    if (session.busy) return googleError(res, 503, 'backendError', 'Concurrent request on the upload session.');
    const range = /^bytes (?:(\d+)-(\d+|\*)|\*)\/(\d+|\*)$/.exec(String(req.headers['content-range'] ?? ''));
    if (!range) return googleError(res, 400, 'invalid', `Invalid Content-Range header: ${String(req.headers['content-range'] ?? '(none)')}`);
    const start = range[1] === undefined ? undefined : Number(range[1]);
    const total = range[3] === '*' ? undefined : Number(range[3]);
    session.busy = true;
    try {
      if (start !== undefined) {
        if (start > session.received) {
          req.resume();
          return googleError(res, 400, 'invalid', `Chunk starts at ${start}, but only ${session.received} bytes were persisted.`);
        }
        // Append the bytes past what is already persisted (a resent overlap is skipped), hashing as they go.
        let skip = session.received - start;
        const out = createWriteStream(session.path, { flags: 'a' });
        for await (const raw of req as AsyncIterable<Buffer>) {
          let chunk = raw;
          if (skip > 0) {
            const dropped = Math.min(skip, chunk.length);
            chunk = chunk.subarray(dropped);
            skip -= dropped;
          }
          if (chunk.length === 0) continue;
          session.md5.update(chunk);
          session.crc.update(chunk);
          session.received += chunk.length;
          if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
        }
        await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
      } else {
        req.resume();
      }
      if (total !== undefined && session.received > total)
        return googleError(res, 400, 'invalid', `Received ${session.received} bytes, more than the declared ${total}.`);
      if (total !== undefined && session.received === total) {
        const bucket = buckets.get(session.bucket);
        if (!bucket) return googleError(res, 404, 'notFound', 'The specified bucket does not exist.');
        const stored: StoredObject = {
          path: join(dir, `obj-${randomBytes(8).toString('hex')}`),
          size: total,
          generation: String(++generation),
          md5: session.md5.digest('base64'),
          crc32c: session.crc.toString(),
          contentType: session.contentType,
          updated: new Date().toISOString(),
        };
        renameSync(session.path, stored.path);
        const previous = bucket.objects.get(session.name);
        if (previous) rmSync(previous.path, { force: true });
        bucket.objects.set(session.name, stored);
        sessions.delete(id);
        res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
        return res.end(JSON.stringify(resource(session.bucket, session.name, stored)));
      }
      res.writeHead(308, session.received > 0 ? { range: `bytes=0-${session.received - 1}`, 'content-length': '0' } : { 'content-length': '0' });
      res.end();
    } finally {
      session.busy = false;
    }
  };

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const path = url.pathname;
      const session = /^\/upload\/session\/([a-f0-9]+)$/.exec(path);
      if (session && req.method === 'PUT') return handleChunk(req, res, session[1]!);
      const who = authorize(req, res);
      if (!who) return req.resume();
      const upload = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(path);
      if (upload && req.method === 'POST') {
        count('POST upload');
        const metadata = await readJson(req);
        const bucketName = decodeURIComponent(upload[1]!);
        if (url.searchParams.get('uploadType') !== 'resumable')
          return googleError(res, 400, 'invalid', 'Only uploadType=resumable is served by this test server.');
        const bucket = bucketFor(res, bucketName, who, 'storage.objects.create');
        if (!bucket) return;
        const name = url.searchParams.get('name') ?? (typeof metadata.name === 'string' ? metadata.name : '');
        if (!name) return googleError(res, 400, 'required', 'Required: object name.');
        if (name.length > 1024 || /[\r\n]/.test(name)) return googleError(res, 400, 'invalid', 'The object name is invalid.');
        const id = randomBytes(16).toString('hex');
        const contentType =
          typeof metadata.contentType === 'string' ? metadata.contentType : String(req.headers['x-upload-content-type'] ?? 'application/octet-stream');
        sessions.set(id, {
          bucket: bucketName,
          name,
          contentType,
          path: join(dir, `session-${id}`),
          received: 0,
          md5: createHash('md5'),
          crc: new CRC32C(),
          busy: false,
        });
        createWriteStream(join(dir, `session-${id}`)).end();
        res.writeHead(200, { location: `${endpoint}/upload/session/${id}`, 'content-length': '0' });
        return res.end();
      }
      const bucketPath = /^\/storage\/v1\/b\/([^/]+)$/.exec(path);
      if (bucketPath && req.method === 'GET') {
        count('GET bucket');
        const name = decodeURIComponent(bucketPath[1]!);
        if (!bucketFor(res, name, who, 'storage.buckets.get')) return;
        res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
        return res.end(
          JSON.stringify({
            kind: 'storage#bucket',
            id: name,
            name,
            location: 'US-CENTRAL1',
            storageClass: 'STANDARD',
            metageneration: '1',
            timeCreated: '2026-01-01T00:00:00.000Z',
          }),
        );
      }
      const objectPath = /^\/storage\/v1\/b\/([^/]+)\/o\/(.+)$/.exec(path);
      if (objectPath && (req.method === 'GET' || req.method === 'DELETE')) {
        const bucketName = decodeURIComponent(objectPath[1]!);
        const name = decodeURIComponent(objectPath[2]!);
        count(`${req.method} object`);
        const bucket = bucketFor(res, bucketName, who, req.method === 'GET' ? 'storage.objects.get' : 'storage.objects.delete');
        if (!bucket) return;
        const object = bucket.objects.get(name);
        if (!object) return googleError(res, 404, 'notFound', `No such object: ${bucketName}/${name}`);
        if (req.method === 'DELETE') {
          bucket.objects.delete(name);
          unlinkSync(object.path);
          res.writeHead(204);
          return res.end();
        }
        if (url.searchParams.get('alt') === 'media') {
          res.writeHead(200, {
            'content-type': object.contentType,
            'content-length': String(object.size),
            'x-goog-hash': `crc32c=${object.crc32c},md5=${object.md5}`,
            'x-goog-generation': object.generation,
          });
          return createReadStream(object.path).pipe(res);
        }
        res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
        return res.end(JSON.stringify(resource(bucketName, name, object)));
      }
      req.resume();
      googleError(res, 404, 'notFound', `Not served by the GCS test server: ${req.method} ${path}`);
    })().catch((error: unknown) => {
      if (!res.headersSent) googleError(res, 500, 'backendError', String((error as Error).message));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    endpoint,
    addBucket(name, opts = {}) {
      buckets.set(name, { deny: opts.deny ?? [], objects: new Map() });
    },
    objects(bucket) {
      return [...(buckets.get(bucket)?.objects.keys() ?? [])];
    },
    openSessions: () => sessions.size,
    count: (kind) => counts.get(kind) ?? 0,
    async close() {
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
