import type { Dirent } from 'node:fs';
import { readdir, readlink } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { contextError, throwIfAborted } from './errors.js';
import type { DockerIgnore } from './ignore.js';

/**
 * What goes into a build context: one directory on disk (mounted at `mount` inside the archive),
 * filtered by its `.dockerignore`, plus generated files that take the place of anything on disk at
 * the same archive path.
 */
export interface ContextLayout {
  /** Real (symlink-free) path of the directory packed. */
  root: string;
  /** Where `root` appears in the archive: `''` for the archive root, or one directory name such as `src`. */
  mount: string;
  /** Applied to paths relative to `root`. Generated files are never excluded. */
  ignore: DockerIgnore;
  /** Generated files by archive path (`Dockerfile.wandb`, `src/requirements.txt`, …). */
  files: ReadonlyMap<string, Buffer>;
  /** Most entries (files, directories, links) the archive may hold. */
  maxEntries: number;
}

/** One archive entry, in archive order. Regular files are opened by the packer, never followed through a link. */
export type WalkEntry =
  | { type: 'dir'; path: string }
  | { type: 'symlink'; path: string; linkTarget: string }
  | { type: 'file'; path: string; fsPath: string }
  | { type: 'generated'; path: string; data: Buffer };

export interface WalkOptions {
  signal?: AbortSignal;
  /** Sockets, FIFOs and devices are not archived (as the docker CLI skips sockets); told here. */
  onSkip?: (path: string, kind: string) => void;
}

interface Child {
  name: string;
  archivePath: string;
  /** Path relative to `root`, for `.dockerignore`; undefined for generated and mount entries. */
  rel?: string;
  dirent?: Dirent;
  generated?: Buffer;
  /** A directory that maps to `root` (the mount point). */
  mountDir?: boolean;
  /** A directory that exists only because generated files live under it. */
  virtualDir?: boolean;
}

const join2 = (a: string, b: string) => (a ? `${a}/${b}` : b);
const byName = (a: Child, b: Child) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

function generatedIndex(layout: ContextLayout): Map<string, Map<string, Buffer>> {
  const index = new Map<string, Map<string, Buffer>>();
  for (const [path, data] of layout.files) {
    const slash = path.lastIndexOf('/');
    const parent = slash === -1 ? '' : path.slice(0, slash);
    let children = index.get(parent);
    if (!children) index.set(parent, (children = new Map()));
    children.set(path.slice(slash + 1), data);
  }
  return index;
}

/**
 * The entries of a layout in a fixed order: each directory's children sorted by name (UTF-16 code
 * units, the same on every machine), depth first. Symbolic links are archived as links and never
 * followed; a link whose target lies outside `root` is refused.
 */
export async function* walkLayout(layout: ContextLayout, options: WalkOptions = {}): AsyncGenerator<WalkEntry> {
  const generated = generatedIndex(layout);
  let count = 0;
  const counted = (where: string) => {
    if (++count > layout.maxEntries) {
      throw contextError({
        code: 'context_too_large',
        message: `the build context has more than ${layout.maxEntries} entries (reached in ${where || 'the context root'})`,
        hint: 'leave generated or data directories out with a .dockerignore, or raise the builder option `maxContextEntries`',
      });
    }
  };

  async function listDir(fsDir: string, rel: string): Promise<Dirent[]> {
    try {
      return await readdir(fsDir, { withFileTypes: true });
    } catch (error) {
      throw contextError({
        code: 'context_unreadable',
        message: `cannot read directory ${rel || '.'} of the build context ${layout.root}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        hint: 'make the job code readable by the agent',
        cause: error,
      });
    }
  }

  async function* visit(archiveDir: string, fsDir: string | undefined, rel: string): AsyncGenerator<WalkEntry> {
    throwIfAborted(options.signal, 'packing the build context');
    const children = new Map<string, Child>();
    if (fsDir !== undefined) {
      for (const dirent of await listDir(fsDir, rel)) {
        children.set(dirent.name, { name: dirent.name, archivePath: join2(archiveDir, dirent.name), rel: join2(rel, dirent.name), dirent });
      }
    }
    if (fsDir === undefined && layout.mount && archiveDir === '') {
      children.set(layout.mount, { name: layout.mount, archivePath: layout.mount, mountDir: true });
    }
    for (const [name, data] of generated.get(archiveDir) ?? []) {
      children.set(name, { name, archivePath: join2(archiveDir, name), generated: data });
    }
    // Directories that exist only to hold generated files (e.g. `src/` when the code dir is elsewhere).
    for (const parent of generated.keys()) {
      if (parent === archiveDir || !parent.startsWith(archiveDir ? `${archiveDir}/` : '')) continue;
      const name = parent.slice(archiveDir ? archiveDir.length + 1 : 0).split('/')[0]!;
      if (!children.has(name)) children.set(name, { name, archivePath: join2(archiveDir, name), virtualDir: true });
    }

    for (const child of [...children.values()].sort(byName)) {
      if (child.generated) {
        counted(child.archivePath);
        yield { type: 'generated', path: child.archivePath, data: child.generated };
        continue;
      }
      if (child.mountDir) {
        counted(child.archivePath);
        yield { type: 'dir', path: child.archivePath };
        yield* visit(child.archivePath, layout.root, '');
        continue;
      }
      if (child.virtualDir) {
        counted(child.archivePath);
        yield { type: 'dir', path: child.archivePath };
        yield* visit(child.archivePath, undefined, '');
        continue;
      }
      const dirent = child.dirent!;
      const relPath = child.rel!;
      const fsPath = join(fsDir!, child.name);
      const ignored = layout.ignore.ignores(relPath);
      if (dirent.isDirectory()) {
        if (ignored) {
          // As the docker CLI: an excluded directory is walked only when an exception may re-include something in it.
          if (layout.ignore.mayReinclude(relPath)) yield* visit(child.archivePath, fsPath, relPath);
          continue;
        }
        counted(child.archivePath);
        yield { type: 'dir', path: child.archivePath };
        yield* visit(child.archivePath, fsPath, relPath);
        continue;
      }
      if (ignored) continue;
      if (dirent.isSymbolicLink()) {
        const target = await readlink(fsPath);
        const resolved = resolve(fsDir!, target);
        const inside = resolved === layout.root || resolved.startsWith(layout.root + sep);
        if (!inside) {
          throw contextError({
            code: 'context_symlink_outside',
            message: `symbolic link ${relPath} in the build context points outside it (to ${isAbsolute(target) ? target : `${target}, i.e. ${relative(layout.root, resolved)}`})`,
            hint: 'remove the link, make it point inside the build context, or exclude it in .dockerignore',
          });
        }
        counted(child.archivePath);
        yield { type: 'symlink', path: child.archivePath, linkTarget: target };
        continue;
      }
      if (dirent.isFile()) {
        counted(child.archivePath);
        yield { type: 'file', path: child.archivePath, fsPath };
        continue;
      }
      const kind = dirent.isSocket() ? 'socket' : dirent.isFIFO() ? 'FIFO' : 'device';
      options.onSkip?.(child.archivePath, kind);
    }
  }

  yield* visit('', layout.mount ? undefined : layout.root, '');
}
