/**
 * Deterministic tar headers (POSIX ustar, with a pax extended header only when a field does not
 * fit: long or non-ASCII names and link targets, files of 8 GiB or more). Every header carries
 * mtime 0, uid/gid 0 and empty owner names, so the bytes depend only on paths, types, the exec bit
 * and contents.
 */

export const BLOCK = 512;

export type TarEntryType = 'file' | 'dir' | 'symlink';

export interface TarHeader {
  /** Archive path, `/`-separated, without a trailing slash for directories. */
  path: string;
  type: TarEntryType;
  /** Permission bits written (0o644/0o755 for files, 0o755 for directories, 0o777 for links). */
  mode: number;
  /** Content size in bytes (0 for directories and links). */
  size: number;
  linkTarget?: string;
}

const TYPEFLAG: Record<TarEntryType, string> = { file: '0', dir: '5', symlink: '2' };
const MAX_OCTAL_SIZE = 0o77777777777; // 11 octal digits

const ASCII = /^[\x20-\x7e]*$/;

function writeString(block: Buffer, offset: number, length: number, value: string): void {
  block.write(value, offset, length, 'utf8');
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  // `length - 1` digits, zero padded, then NUL.
  block.write(value.toString(8).padStart(length - 1, '0'), offset, length - 1, 'ascii');
  block[offset + length - 1] = 0;
}

/** Splits a path into ustar `prefix` (≤ 155 bytes) and `name` (≤ 100 bytes), if it can be. */
function splitUstarPath(path: string): { prefix: string; name: string } | undefined {
  if (path.length <= 100) return { prefix: '', name: path };
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (prefix.length <= 155 && name.length <= 100 && name.length > 0) return { prefix, name };
    if (prefix.length > 155) break;
  }
  return undefined;
}

function paxRecord(key: string, value: string): Buffer {
  // "<length> <key>=<value>\n" where length counts the whole record, its own digits included.
  const body = ` ${key}=${value}\n`;
  const bodyBytes = Buffer.byteLength(body);
  let length = bodyBytes + String(bodyBytes).length;
  while (String(length).length + bodyBytes !== length) length = String(length).length + bodyBytes;
  return Buffer.from(`${length}${body}`);
}

function ustarBlock(fields: { name: string; prefix: string; mode: number; size: number; typeflag: string; linkname: string }): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeString(block, 0, 100, fields.name);
  writeOctal(block, 100, 8, fields.mode);
  writeOctal(block, 108, 8, 0); // uid
  writeOctal(block, 116, 8, 0); // gid
  writeOctal(block, 124, 12, fields.size);
  writeOctal(block, 136, 12, 0); // mtime
  block.fill(0x20, 148, 156); // checksum counted as spaces
  block.write(fields.typeflag, 156, 1, 'ascii');
  writeString(block, 157, 100, fields.linkname);
  block.write('ustar\u000000', 257, 8, 'binary');
  writeString(block, 345, 155, fields.prefix);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i]!;
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'binary');
  return block;
}

/** Bytes of padding after `size` content bytes, up to the next block boundary. */
export function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

/** The header block(s) of one entry: a pax header first when a field does not fit ustar. */
export function encodeHeader(header: TarHeader): Buffer {
  const archivePath = header.type === 'dir' ? `${header.path}/` : header.path;
  const records: Buffer[] = [];
  let split = ASCII.test(archivePath) ? splitUstarPath(archivePath) : undefined;
  if (!split) {
    records.push(paxRecord('path', archivePath));
    split = {
      prefix: '',
      name: Buffer.from(archivePath)
        .subarray(0, 100)
        .toString('latin1')
        .replace(/[^\x20-\x7e]/g, '_'),
    };
  }
  let linkname = header.linkTarget ?? '';
  if (linkname.length > 100 || !ASCII.test(linkname)) {
    records.push(paxRecord('linkpath', linkname));
    linkname = '';
  }
  let size = header.size;
  if (size > MAX_OCTAL_SIZE) {
    records.push(paxRecord('size', String(size)));
    size = 0;
  }
  const main = ustarBlock({ ...split, mode: header.mode, size, typeflag: TYPEFLAG[header.type], linkname });
  if (records.length === 0) return main;
  const body = Buffer.concat(records);
  const pax = ustarBlock({ name: '././@PaxHeader', prefix: '', mode: 0o644, size: body.length, typeflag: 'x', linkname: '' });
  return Buffer.concat([pax, body, Buffer.alloc(padding(body.length)), main]);
}

/** The end of an archive: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);
