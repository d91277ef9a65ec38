/** One entry of a small in-memory tar archive (ustar). */
export type TarEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; mode?: number; data: Buffer }
  | { type: 'symlink'; path: string; target: string };

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(path: string, typeflag: string, size: number, mode: number, linkname = ''): Buffer {
  if (Buffer.byteLength(path) > 100 || Buffer.byteLength(linkname) > 100) {
    throw new Error(`tar entry name longer than 100 bytes: ${path}`);
  }
  const block = Buffer.alloc(512);
  block.write(path, 0, 100);
  block.write(octal(mode, 8), 100);
  block.write(octal(0, 8), 108); // uid
  block.write(octal(0, 8), 116); // gid
  block.write(octal(size, 12), 124);
  block.write(octal(0, 12), 136); // mtime: fixed, so the same input gives the same image id
  block.write('        ', 148); // checksum placeholder
  block.write(typeflag, 156);
  block.write(linkname, 157, 100);
  block.write('ustar\0', 257);
  block.write('00', 263);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return block;
}

/**
 * A tar archive of `entries`, owned by root with mtime 0. Enough for a base image's root file system;
 * names are limited to 100 bytes.
 */
export function makeTar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    if (entry.type === 'dir') {
      parts.push(header(entry.path.endsWith('/') ? entry.path : `${entry.path}/`, '5', 0, entry.mode ?? 0o755));
    } else if (entry.type === 'symlink') {
      parts.push(header(entry.path, '2', 0, 0o777, entry.target));
    } else {
      parts.push(header(entry.path, '0', entry.data.length, entry.mode ?? 0o644), entry.data);
      const pad = (512 - (entry.data.length % 512)) % 512;
      if (pad) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
