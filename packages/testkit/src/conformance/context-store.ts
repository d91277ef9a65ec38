import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LaunchError, type ContextStore } from '@launch/core';

/** What a context store's object holds, read back by a store-specific reader; null when there is no such object. */
export type ContextStoreReader = (uri: string) => Promise<Uint8Array | NodeJS.ReadableStream | null>;

export interface ContextStoreFixture {
  /** A store whose bucket (container, directory) exists and is writable. */
  store: ContextStore;
  /** Reads an uploaded object back by the URI `upload` returned, with the store's own client or protocol. */
  read: ContextStoreReader;
  /** The same kind of store pointed at a bucket (container, …) that does not exist. */
  missingBucketStore: ContextStore;
  /** The name of that missing bucket, which its verify error must mention. */
  missingBucketName: string;
  /** Text every error of `store` must never contain (e.g. the secret key of its credentials). */
  secrets?: string[];
  cleanup?(): Promise<void> | void;
}

export interface DescribeContextStoreOptions {
  /** Size of the large upload in MiB. Default 50. */
  largeMiB?: number;
}

const ctx = () => ({ logger: { debug() {}, info() {}, warn() {}, error() {} } });

/** Every message, hint and cause message of an error chain. */
function errorText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 10; depth++) {
    if (current instanceof Error) {
      parts.push(current.message, String((current as { hint?: unknown }).hint ?? ''), current.stack ?? '');
      current = (current as { cause?: unknown }).cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join('\n');
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

async function sha256Of(content: Uint8Array | NodeJS.ReadableStream): Promise<{ hash: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  if (content instanceof Uint8Array) {
    hash.update(content);
    bytes = content.byteLength;
  } else {
    for await (const chunk of content as AsyncIterable<Buffer | string>) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      hash.update(buf);
      bytes += buf.length;
    }
  }
  return { hash: hash.digest('hex'), bytes };
}

/** Writes `mib` MiB of pseudo-random bytes in 1 MiB chunks (bounded memory); returns their sha256. */
async function writeLargeFile(path: string, mib: number): Promise<string> {
  const hash = createHash('sha256');
  const seed = randomBytes(1024 * 1024);
  async function* chunks() {
    for (let i = 0; i < mib; i++) {
      // Vary every chunk so that a store repeating or dropping a part is caught.
      const chunk = Buffer.from(seed);
      chunk.writeUInt32BE(i, 0);
      chunk.writeUInt32BE((i * 2654435761) >>> 0, chunk.length - 4);
      hash.update(chunk);
      yield chunk;
    }
  }
  await pipeline(Readable.from(chunks()), createWriteStream(path));
  return hash.digest('hex');
}

/**
 * The ContextStore contract, checked against one backend (unstorage's `testDriver()` pattern):
 * verify passes on a good store and fails clearly on a missing bucket; a small and a large (50 MiB)
 * upload return a URI whose object equals the file (read back by `read`); delete removes it and a
 * second delete is fine; keys with odd characters either round-trip or are refused with a
 * LaunchError (category `ContextUpload`) naming the key.
 *
 * @example
 * describeContextStore('s3 (s3rver)', async () => ({ store, read, missingBucketStore, missingBucketName }));
 */
export function describeContextStore(
  name: string,
  setup: () => Promise<ContextStoreFixture> | ContextStoreFixture,
  options: DescribeContextStoreOptions = {},
): void {
  const largeMiB = options.largeMiB ?? 50;
  describe(`ContextStore conformance: ${name}`, () => {
    let fx!: ContextStoreFixture;
    let dir!: string;
    const run = randomBytes(4).toString('hex');

    beforeAll(async () => {
      fx = await setup();
      dir = mkdtempSync(join(tmpdir(), 'context-store-conf-'));
    });

    afterAll(async () => {
      if (dir) rmSync(dir, { recursive: true, force: true });
      await fx?.cleanup?.();
    });

    const expectClean = (error: unknown) => {
      const text = errorText(error);
      for (const secret of fx.secrets ?? []) expect(text).not.toContain(secret);
    };

    it('declares its contract version and name', () => {
      expect(fx.store.specificationVersion).toBe('v1');
      expect(fx.store.name).toMatch(/\S/);
    });

    it('verify passes on a good store', async () => {
      await expect(fx.store.verify(ctx())).resolves.toBeUndefined();
    });

    it('verify fails on a missing bucket with a ContextUpload LaunchError naming it', async () => {
      const error = await rejection(fx.missingBucketStore.verify(ctx()));
      expect(LaunchError.isInstance(error)).toBe(true);
      const e = error as LaunchError;
      expect(e.category).toBe('ContextUpload');
      expect(e.message).toContain(fx.missingBucketName);
      expect(e.hint).toBeTruthy();
      expectClean(error);
    });

    it('uploads a small file; the object equals the file; delete removes it; a second delete is fine', async () => {
      const path = join(dir, 'small.tgz');
      const content = Buffer.from(`small context ${run}\n`);
      writeFileSync(path, content);
      const { uri } = await fx.store.upload(path, `conf-${run}/small.tgz`, ctx());
      expect(typeof uri).toBe('string');
      expect(uri).toContain(`conf-${run}/small.tgz`);
      const read = await fx.read(uri);
      expect(read).not.toBeNull();
      expect(await sha256Of(read!)).toEqual(await sha256Of(content));
      if (!fx.store.delete) return;
      await fx.store.delete(uri, ctx());
      expect(await fx.read(uri)).toBeNull();
      await expect(fx.store.delete(uri, ctx())).resolves.toBeUndefined();
    });

    it(`uploads a ${largeMiB} MiB file intact`, async () => {
      const path = join(dir, 'large.tgz');
      const expected = await writeLargeFile(path, largeMiB);
      const { uri } = await fx.store.upload(path, `conf-${run}/large.tgz`, ctx());
      const read = await fx.read(uri);
      expect(read).not.toBeNull();
      expect(await sha256Of(read!)).toEqual({ hash: expected, bytes: largeMiB * 1024 * 1024 });
      await fx.store.delete?.(uri, ctx());
      if (fx.store.delete) expect(await fx.read(uri)).toBeNull();
    }, 300_000);

    it('deleting an object that was never uploaded is not an error', async (context) => {
      if (!fx.store.delete) {
        context.skip();
        return;
      }
      const path = join(dir, 'probe.tgz');
      writeFileSync(path, 'probe');
      // A URI of the store's own form, for a key that is then removed, then deleted again.
      const { uri } = await fx.store.upload(path, `conf-${run}/never.tgz`, ctx());
      await fx.store.delete(uri, ctx());
      await expect(fx.store.delete(uri.replace('never.tgz', `never-${randomBytes(3).toString('hex')}.tgz`), ctx())).resolves.toBeUndefined();
    });

    it('keys with odd characters round-trip or are refused with a ContextUpload error naming the key', async () => {
      const path = join(dir, 'odd.tgz');
      const content = Buffer.from(`odd ${run}`);
      writeFileSync(path, content);
      const keys = [
        `conf-${run}/run 1+a=b@c,d.tgz`,
        `conf-${run}/ünïcødé-ключ.tgz`,
        `conf-${run}/a#b.tgz`,
        `conf-${run}/x\\y.tgz`,
        `conf-${run}/../escape.tgz`,
        `conf-${run}/ctl\u0001.tgz`,
        '',
        `conf-${run}/q?x=1.tgz`,
      ];
      for (const key of keys) {
        let uri: string;
        try {
          uri = (await fx.store.upload(path, key, ctx())).uri;
        } catch (error) {
          expect(LaunchError.isInstance(error), `key ${JSON.stringify(key)}: ${String(error)}`).toBe(true);
          const e = error as LaunchError;
          expect(e.category, `key ${JSON.stringify(key)}`).toBe('ContextUpload');
          expect(e.message, `key ${JSON.stringify(key)}`).toContain(JSON.stringify(key).slice(1, -1).slice(0, 20) || '""');
          continue;
        }
        // Accepted: it must really be there under that key, and no other key may be escaped to.
        expect(key.includes('..'), `key ${JSON.stringify(key)} escapes the prefix but was accepted`).toBe(false);
        const read = await fx.read(uri);
        expect(read, `key ${JSON.stringify(key)}`).not.toBeNull();
        expect(await sha256Of(read!)).toEqual(await sha256Of(content));
        await fx.store.delete?.(uri, ctx());
      }
    });
  });
}
