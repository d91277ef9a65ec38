import { createReadStream } from 'node:fs';
import type http from 'node:http';
import type { ArtifactStore, RecordedDownload } from './artifacts.js';

/**
 * Serves the artifact store's signed URLs (`/storage/manifest/<id>?sig=…`, `/storage/files/<id>/<path>?sig=…`)
 * as object storage serves W&B's pre-signed URLs: no Authorization needed, a wrong or missing signature is
 * `403`, the body is streamed with a `content-length`. Download faults (`cut`, `corrupt`, a status) apply to
 * files, not manifests.
 */
export async function serveStorage(store: ArtifactStore, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const found = store.verify(req.url ?? '/');
  const record: RecordedDownload = {
    at: Date.now(),
    kind: found?.kind ?? 'file',
    artifactId: found?.record.id ?? '',
    ...(found?.file ? { path: found.file.path } : {}),
    status: 0,
    authorized: req.headers.authorization !== undefined,
  };
  store.downloads.push(record);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    record.status = 405;
    res.writeHead(405).end();
    return;
  }
  if (!found) {
    record.status = 403;
    res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>SignatureDoesNotMatch</Code></Error>');
    return;
  }
  if (found.kind === 'manifest') {
    const body = Buffer.from(found.record.manifestJson, 'utf8');
    record.status = 200;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) }).end(body);
    return;
  }
  const file = found.file!;
  const fault = store.takeFault(found.record.id, file.path);
  if (fault) record.fault = fault.kind;
  if (typeof fault?.kind === 'number') {
    record.status = fault.kind;
    res.writeHead(fault.kind, { 'content-type': 'text/plain' }).end(`injected fault ${fault.kind}`);
    return;
  }
  record.status = 200;
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(file.size) });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const cutAt = fault?.kind === 'cut' ? Math.floor(file.size / 2) : undefined;
  const source: AsyncIterable<Buffer> | Iterable<Buffer> = Buffer.isBuffer(file.content)
    ? [file.content.subarray(0, cutAt ?? file.size)]
    : createReadStream(file.content.path, cutAt === undefined ? {} : { end: Math.max(cutAt - 1, 0) });
  let first = true;
  try {
    for await (let chunk of source) {
      if (fault?.kind === 'corrupt' && first && chunk.length > 0) {
        chunk = Buffer.from(chunk);
        chunk[0] = chunk[0]! ^ 0xff;
      }
      first = false;
      if (!res.write(chunk)) await drainOrClose(res);
      if (res.destroyed) return;
    }
  } catch {
    res.destroy();
    return;
  }
  if (cutAt !== undefined) {
    // Let the half body leave, then drop the connection: the client sees a body shorter than content-length.
    await new Promise<void>((resolve) => res.write('', () => resolve()));
    req.socket.destroy();
    return;
  }
  res.end();
}

/** Waits until the response can take more, or the client went away. */
function drainOrClose(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
