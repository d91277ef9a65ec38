import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { LaunchError } from '@launch/core';
import { emptyDockerIgnore, parseDockerIgnore } from './ignore.js';
import { hashContext, packContext } from './pack.js';
import { contentTag } from './tag.js';
import type { ContextLayout } from './walk.js';

const scratch = mkdtempSync(join(tmpdir(), 'launch-pack-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => {
  const dir = join(scratch, `d${++dirs}`);
  mkdirSync(dir);
  return dir;
};

function layout(root: string, extra: Partial<ContextLayout> = {}): ContextLayout {
  return { root, mount: '', ignore: emptyDockerIgnore, files: new Map(), maxEntries: 100_000, ...extra };
}

async function packToBuffer(l: ContextLayout, options: Parameters<typeof packContext>[1] = {}) {
  const { stream, digest } = packContext(l, options);
  const chunks: Buffer[] = [];
  await pipeline(stream, new Writable({ write: (c, _e, cb) => (chunks.push(c as Buffer), cb()) }));
  return { gz: Buffer.concat(chunks), digest: await digest };
}

/** `tar -tv` listing of an archive, through the system's GNU tar. */
function listing(gz: Buffer): string[] {
  return execFileSync('tar', ['-tvzf', '-', '--numeric-owner'], { input: gz, encoding: 'utf8' }).trim().split('\n');
}

function writeTree(root: string): void {
  mkdirSync(join(root, 'pkg/sub'), { recursive: true });
  mkdirSync(join(root, 'empty'));
  writeFileSync(join(root, 'train.py'), 'print("hi")\n');
  writeFileSync(join(root, 'run.sh'), '#!/bin/sh\necho run\n');
  chmodSync(join(root, 'run.sh'), 0o755);
  writeFileSync(join(root, 'pkg/sub/data.bin'), Buffer.alloc(3 * 1024 * 1024 + 17, 7)); // larger than one chunk
  writeFileSync(join(root, 'pkg/__init__.py'), '');
  symlinkSync('sub/data.bin', join(root, 'pkg/link'));
  const long = `${'long-directory-name-'.repeat(6)}/${'even-longer-file-name-'.repeat(8)}.txt`; // > 255 bytes: pax
  mkdirSync(join(root, long, '..'), { recursive: true });
  writeFileSync(join(root, long), 'long\n');
  writeFileSync(join(root, 'ünïcode-名前.txt'), 'utf-8 name\n');
}

describe('packContext', () => {
  it('writes a tar.gz that GNU tar extracts to the same tree, with fixed owners, times and modes', async () => {
    const root = freshDir();
    writeTree(root);
    chmodSync(join(root, 'train.py'), 0o600); // only the exec bit survives: 0644 in the archive
    const { gz } = await packToBuffer(layout(root, { files: new Map([['Dockerfile.wandb', Buffer.from('FROM scratch\n')]]) }));
    const lines = listing(gz);
    for (const line of lines) expect(line).toMatch(/^(-rw-r--r--|-rwxr-xr-x|drwxr-xr-x|lrwxrwxrwx) 0\/0 .* 1970-01-01 00:00 /);
    expect(lines.find((l) => l.endsWith(' train.py'))).toMatch(/^-rw-r--r-- /);
    expect(lines.find((l) => l.endsWith(' run.sh'))).toMatch(/^-rwxr-xr-x /);
    expect(lines.find((l) => l.includes(' pkg/link'))).toMatch(/^lrwxrwxrwx .* pkg\/link -> sub\/data\.bin$/);
    expect(lines.some((l) => l.endsWith(' empty/'))).toBe(true);
    const out = freshDir();
    execFileSync('tar', ['-xzf', '-', '-C', out], { input: gz });
    execFileSync('diff', ['-r', '--no-dereference', root, out, '-x', 'Dockerfile.wandb']);
    expect(readFileSync(join(out, 'Dockerfile.wandb'), 'utf8')).toBe('FROM scratch\n');
  });

  it('orders entries by name, depth first, and puts generated files in place of files on disk', async () => {
    const root = freshDir();
    mkdirSync(join(root, 'b'));
    writeFileSync(join(root, 'b/z'), '');
    writeFileSync(join(root, 'a'), '');
    writeFileSync(join(root, 'c'), 'on disk');
    const { gz } = await packToBuffer(layout(root, { files: new Map([['c', Buffer.from('generated')]]) }));
    expect(listing(gz).map((l) => l.split(' ').at(-1))).toEqual(['a', 'b/', 'b/z', 'c']);
    const out = freshDir();
    execFileSync('tar', ['-xzf', '-', '-C', out], { input: gz });
    expect(readFileSync(join(out, 'c'), 'utf8')).toBe('generated');
  });

  it('mounts the code under src/ with generated files beside it', async () => {
    const root = freshDir();
    writeFileSync(join(root, 'train.py'), '');
    const { gz } = await packToBuffer(
      layout(root, {
        mount: 'src',
        files: new Map([
          ['Dockerfile.wandb', Buffer.from('x')],
          ['src/runtime.txt', Buffer.from('python-3.11')],
        ]),
      }),
    );
    expect(listing(gz).map((l) => l.split(' ').at(-1))).toEqual(['Dockerfile.wandb', 'src/', 'src/runtime.txt', 'src/train.py']);
  });

  it('hashes the uncompressed tar stream, the same digest hashContext gives', async () => {
    const root = freshDir();
    writeTree(root);
    const { gz, digest } = await packToBuffer(layout(root));
    const tar = gunzipSync(gz);
    expect(digest.sha256).toBe(createHash('sha256').update(tar).digest('hex'));
    expect(digest.tarBytes).toBe(tar.length);
    expect(await hashContext(layout(root))).toEqual(digest);
    const plain = await packToBuffer(layout(root), { gzipLevel: false });
    expect(plain.gz.equals(tar)).toBe(true);
    expect(digest.check).toBe(createHash('sha1').update(tar).digest('hex'));
  });

  it('packs without the sha256 when told, giving the check a second packing is compared by', async () => {
    const root = freshDir();
    writeTree(root);
    const hashed = await hashContext(layout(root));
    const again = await packToBuffer(layout(root), { gzipLevel: false, sha256: false });
    expect(again.digest).toEqual({ ...hashed, sha256: '' });
    writeFileSync(join(root, 'train.py'), 'print("hI")\n');
    const changed = await packToBuffer(layout(root), { gzipLevel: false, sha256: false });
    expect(changed.digest.check).not.toBe(hashed.check);
  });

  it('gives byte-identical archives and the same tag for the same tree in two places with other times and owners', async () => {
    const one = freshDir();
    const two = freshDir();
    writeTree(one);
    writeTree(two);
    // The second copy: other owners, other times, other permission bits (but the same exec bits).
    const other = [join(two, 'train.py'), join(two, 'pkg/sub/data.bin'), join(two, 'pkg')];
    for (const path of other) {
      chownSync(path, 1234, 5678);
      utimesSync(path, new Date('2001-02-03'), new Date('2001-02-03'));
    }
    chmodSync(join(two, 'train.py'), 0o640);
    chmodSync(join(two, 'run.sh'), 0o700);
    const a = await packToBuffer(layout(one));
    const b = await packToBuffer(layout(two));
    expect(b.digest).toEqual(a.digest);
    expect(b.gz.equals(a.gz)).toBe(true);
    const tag = (d: string) => contentTag({ dockerfile: 'FROM x\n', contextDigest: d });
    expect(tag(b.digest.sha256)).toBe(tag(a.digest.sha256));
    // A one-byte change changes digest and tag.
    writeFileSync(join(two, 'train.py'), 'print("hI")\n');
    const c = await packToBuffer(layout(two));
    expect(c.digest.sha256).not.toBe(a.digest.sha256);
    expect(tag(c.digest.sha256)).not.toBe(tag(a.digest.sha256));
  });

  it('honours .dockerignore, walking an excluded directory only for an exception', async () => {
    const root = freshDir();
    mkdirSync(join(root, 'logs'));
    mkdirSync(join(root, 'node_modules/x'), { recursive: true });
    writeFileSync(join(root, 'logs/keep.txt'), '');
    writeFileSync(join(root, 'logs/drop.txt'), '');
    writeFileSync(join(root, 'node_modules/x/index.js'), '');
    writeFileSync(join(root, 'main.py'), '');
    writeFileSync(join(root, 'secret.env'), '');
    const ignore = parseDockerIgnore('node_modules\nlogs\n!logs/keep.txt\n*.env\n');
    const { gz } = await packToBuffer(layout(root, { ignore }));
    expect(listing(gz).map((l) => l.split(' ').at(-1))).toEqual(['logs/keep.txt', 'main.py']);
  });

  it('packs a 10,000-file tree', async () => {
    const root = freshDir();
    for (let d = 0; d < 100; d++) {
      mkdirSync(join(root, `d${d}`));
      for (let f = 0; f < 100; f++) writeFileSync(join(root, `d${d}`, `f${f}.txt`), `${d}/${f}\n`);
    }
    const { digest } = await packToBuffer(layout(root));
    expect(digest.entries).toBe(10_100);
  });

  it('refuses a tree with more entries than allowed, saying where', async () => {
    const root = freshDir();
    mkdirSync(join(root, 'many'));
    for (let f = 0; f < 50; f++) writeFileSync(join(root, 'many', `f${f}`), '');
    const error = await hashContext(layout(root, { maxEntries: 20 })).catch((e: unknown) => e);
    expect(LaunchError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'build.context_too_large', stage: 'build' });
    expect((error as LaunchError).message).toMatch(/more than 20 entries \(reached in many\/f\d+\)/);
    expect((error as LaunchError).hint).toContain('.dockerignore');
  });

  it('refuses a symbolic link that points outside the context, naming it, and never reads through it', async () => {
    const outside = freshDir();
    writeFileSync(join(outside, 'secret'), 'top secret');
    for (const target of [join(outside, 'secret'), '../../etc/passwd', '/etc/shadow']) {
      const root = freshDir();
      mkdirSync(join(root, 'sub'));
      symlinkSync(target, join(root, 'sub/escape'));
      const error = await packToBuffer(layout(root)).catch((e: unknown) => e);
      expect(LaunchError.isInstance(error)).toBe(true);
      expect(error).toMatchObject({ code: 'build.context_symlink_outside', stage: 'build', category: 'BuildFailed' });
      expect((error as LaunchError).message).toContain('sub/escape');
      expect((error as LaunchError).message).not.toContain('top secret');
    }
    // Excluded, the same link is fine.
    const root = freshDir();
    symlinkSync('/etc/shadow', join(root, 'escape'));
    writeFileSync(join(root, 'ok'), '');
    const { gz } = await packToBuffer(layout(root, { ignore: parseDockerIgnore('escape') }));
    expect(listing(gz).map((l) => l.split(' ').at(-1))).toEqual(['ok']);
  });

  it('skips a FIFO instead of blocking on it, and reports it', async () => {
    const root = freshDir();
    execFileSync('mkfifo', [join(root, 'pipe')]);
    writeFileSync(join(root, 'file'), 'x');
    const skipped: string[] = [];
    const { gz } = await packToBuffer(layout(root), { onSkip: (path, kind) => skipped.push(`${kind} ${path}`) });
    expect(skipped).toEqual(['FIFO pipe']);
    expect(listing(gz).map((l) => l.split(' ').at(-1))).toEqual(['file']);
  });

  it('stops when the signal aborts, with a build-stage error', async () => {
    const root = freshDir();
    writeTree(root);
    const controller = new AbortController();
    controller.abort();
    const error = await packToBuffer(layout(root), { signal: controller.signal }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'build.aborted', stage: 'build' });
  });

  it('rejects the digest when the consumer gives up half-way', async () => {
    const root = freshDir();
    writeTree(root);
    const { stream, digest } = packContext(layout(root));
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.destroy();
    await expect(digest).rejects.toThrow();
  });
});
