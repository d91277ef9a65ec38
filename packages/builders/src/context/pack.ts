import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { pipeline, Readable, Transform, Writable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { abortedError, contextError, throwIfAborted } from './errors.js';
import { encodeHeader, END_OF_ARCHIVE, padding } from './tar.js';
import { walkLayout, type ContextLayout, type WalkOptions } from './walk.js';

/** What a packed context hashed to. */
export interface ContextDigest {
  /**
   * sha256 (hex) of the **uncompressed** tar stream: the same on every machine whatever its zlib.
   * Empty when packed with `sha256: false`.
   */
  sha256: string;
  /**
   * sha1 (hex) of the same stream: a cheap checksum that tells whether two packings of one layout
   * gave the same bytes (the file changed between them), several times faster than sha256. Not a
   * content address: tags use {@link ContextDigest.sha256}.
   */
  check: string;
  /** Bytes of the uncompressed tar stream. */
  tarBytes: number;
  /** Files, directories and links archived. */
  entries: number;
}

export interface PackOptions extends WalkOptions {
  /** gzip level (0–9; default 1, as `gzip -1`), or `false` for a plain tar stream. */
  gzipLevel?: number | false;
  /**
   * Compute the sha256 (default true). `false` computes only {@link ContextDigest.check}: for a
   * second packing of a layout already hashed, compared with the first by `check`.
   */
  sha256?: boolean;
}

export interface PackedContext {
  /** The archive (tar.gz, or tar with `gzipLevel: false`), produced as it is read. */
  stream: Readable;
  /**
   * Resolves once the whole archive was produced; rejects when packing failed or the stream was
   * destroyed before the end.
   */
  digest: Promise<ContextDigest>;
}

/** Bytes gathered before a chunk is handed on: small files are batched, large ones read in pieces of this size. */
const CHUNK = 256 * 1024;
/** Bytes buffered between the stages, so reading, hashing and compressing (on the thread pool) overlap. */
const STAGE_BUFFER = 2 * 1024 * 1024;
const FILE_MODE_EXEC = 0o755;
const FILE_MODE = 0o644;
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

interface OpenedFile {
  fd: number;
  size: number;
  mode: number;
}

/** Longest stretch of synchronous file work before the event loop gets a turn. */
const SLICE_MS = 5;

function openError(path: string, error: unknown) {
  const code = (error as NodeJS.ErrnoException).code;
  return contextError({
    code: code === 'ELOOP' ? 'context_changed' : 'context_unreadable',
    message:
      code === 'ELOOP'
        ? `file ${path} became a symbolic link while the build context was being packed`
        : `cannot read ${path} in the build context: ${code ?? (error as Error).message}`,
    hint: 'make the job code readable by the agent, and let nothing write into it while a build runs',
    retryable: code === 'ELOOP' || code === 'ENOENT',
    cause: error,
  });
}

/**
 * Opens one file. File work is synchronous: for trees of many small files the round trips of four
 * asynchronous calls per file cost several times the work itself, and page-cache reads of at most
 * one chunk are short. The packer gives the event loop a turn every {@link SLICE_MS}. Returns
 * undefined for something that is not a regular file after all (swapped since the walk).
 */
function openFile(fsPath: string, path: string): OpenedFile | undefined {
  let fd: number;
  try {
    // O_NOFOLLOW: a file swapped for a link since the walk is refused, never followed; O_NONBLOCK: a FIFO cannot block.
    fd = openSync(fsPath, OPEN_FLAGS);
  } catch (error) {
    throw openError(path, error);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      closeSync(fd);
      return undefined;
    }
    return { fd, size: stat.size, mode: stat.mode & 0o111 ? FILE_MODE_EXEC : FILE_MODE };
  } catch (error) {
    closeSync(fd);
    throw openError(path, error);
  }
}

function readInto(fd: number, buffer: Buffer, offset: number, length: number, position: number, path: string): void {
  for (let done = 0; done < length; ) {
    let bytesRead: number;
    try {
      bytesRead = readSync(fd, buffer, offset + done, length - done, position + done);
    } catch (error) {
      throw openError(path, error);
    }
    if (bytesRead === 0) {
      throw contextError({
        code: 'context_changed',
        message: `file ${path} shrank while the build context was being packed`,
        hint: 'nothing may write into the job code directory while a build runs',
        retryable: true,
      });
    }
    done += bytesRead;
  }
}

/** The tar stream of a layout, in chunks of {@link CHUNK} bytes (file contents are read straight into them). */
async function* tarChunks(layout: ContextLayout, options: PackOptions, counter: { entries: number }): AsyncGenerator<Buffer> {
  let batch = Buffer.allocUnsafe(CHUNK);
  let used = 0;
  function* flush(): Generator<Buffer> {
    if (used > 0) {
      yield batch.subarray(0, used);
      batch = Buffer.allocUnsafe(CHUNK);
      used = 0;
    }
  }
  function* put(bytes: Buffer): Generator<Buffer> {
    for (let done = 0; done < bytes.length; ) {
      if (used === CHUNK) yield* flush();
      const n = Math.min(CHUNK - used, bytes.length - done);
      bytes.copy(batch, used, done, done + n);
      used += n;
      done += n;
    }
  }
  let sliceStart = performance.now();
  const breathe = async () => {
    if (performance.now() - sliceStart > SLICE_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      throwIfAborted(options.signal, 'packing the build context');
      sliceStart = performance.now();
    }
  };

  for await (const entry of walkLayout(layout, options)) {
    counter.entries++;
    if (entry.type === 'dir') yield* put(encodeHeader({ path: entry.path, type: 'dir', mode: 0o755, size: 0 }));
    else if (entry.type === 'symlink') yield* put(encodeHeader({ path: entry.path, type: 'symlink', mode: 0o777, size: 0, linkTarget: entry.linkTarget }));
    else if (entry.type === 'generated') {
      yield* put(encodeHeader({ path: entry.path, type: 'file', mode: FILE_MODE, size: entry.data.length }));
      yield* put(entry.data);
      yield* put(Buffer.alloc(padding(entry.data.length)));
    } else {
      await breathe();
      const file = openFile(entry.fsPath, entry.path);
      if (!file) {
        options.onSkip?.(entry.path, 'non-regular file');
        counter.entries--;
        continue;
      }
      try {
        yield* put(encodeHeader({ path: entry.path, type: 'file', mode: file.mode, size: file.size }));
        for (let position = 0; position < file.size; ) {
          if (used === CHUNK) {
            yield* flush();
            await breathe();
          }
          const n = Math.min(CHUNK - used, file.size - position);
          readInto(file.fd, batch, used, n, position, entry.path);
          used += n;
          position += n;
        }
      } finally {
        closeSync(file.fd);
      }
      yield* put(Buffer.alloc(padding(file.size)));
    }
  }
  yield* put(END_OF_ARCHIVE);
  yield* flush();
}

/**
 * Packs a layout into a deterministic archive, streamed: entries in {@link walkLayout} order,
 * mtime 0, uid/gid 0, no owner names, modes 0644/0755 (only the exec bit of a file is kept), 0755
 * for directories. The tar bytes are hashed (sha256) and gzip-compressed in the same pass; nothing
 * but a few chunks of about 1 MiB is held in memory.
 *
 * @example
 * const { stream, digest } = packContext(plan, { signal });
 * await pipeline(stream, createWriteStream('context.tgz'));
 * console.log((await digest).sha256);
 */
export function packContext(layout: ContextLayout, options: PackOptions = {}): PackedContext {
  const counter = { entries: 0 };
  const source = Readable.from(tarChunks(layout, options, counter), { objectMode: false, highWaterMark: STAGE_BUFFER });
  const hash = options.sha256 === false ? undefined : createHash('sha256');
  const check = createHash('sha1');
  let tarBytes = 0;
  let resolveDigest!: (digest: ContextDigest) => void;
  let rejectDigest!: (error: unknown) => void;
  const digest = new Promise<ContextDigest>((resolve, reject) => {
    resolveDigest = resolve;
    rejectDigest = reject;
  });
  digest.catch(() => undefined); // the caller may only look at the stream's error
  // Known once the tar ends, but given out only once the consumer has read the whole stream: a digest for
  // content that was never delivered (the consumer gave up) would name an image that was not built from it.
  let computed: ContextDigest | undefined;
  const hasher = new Transform({
    highWaterMark: STAGE_BUFFER,
    transform(chunk: Buffer, _encoding, callback) {
      hash?.update(chunk);
      check.update(chunk);
      tarBytes += chunk.length;
      callback(null, chunk);
    },
    flush(callback) {
      computed = { sha256: hash?.digest('hex') ?? '', check: check.digest('hex'), tarBytes, entries: counter.entries };
      callback();
    },
  });
  const level = options.gzipLevel ?? 1;
  const stages: Array<NodeJS.ReadableStream | NodeJS.WritableStream> = [source, hasher];
  let out: Readable = hasher;
  if (level !== false) {
    const gzip = createGzip({ level, chunkSize: 128 * 1024 });
    stages.push(gzip);
    out = gzip;
  }
  const onAbort = () => source.destroy(abortedError('packing the build context', options.signal?.reason));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  (pipeline as (...args: unknown[]) => void)(...stages, (error: Error | null) => {
    options.signal?.removeEventListener('abort', onAbort);
    if (error) rejectDigest(error);
    else if (computed) resolveDigest(computed);
    else rejectDigest(new Error('the build context stream ended before the tar was complete'));
  });
  return { stream: out, digest };
}

/** Hashes a layout without compressing or keeping it: the digest {@link packContext} would give. */
export async function hashContext(layout: ContextLayout, options: WalkOptions = {}): Promise<ContextDigest> {
  throwIfAborted(options.signal, 'hashing the build context');
  const { stream, digest } = packContext(layout, { ...options, gzipLevel: false });
  const sink = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  await new Promise<void>((resolve, reject) => pipeline(stream, sink, (error) => (error ? reject(error) : resolve())));
  return digest;
}
