import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * File name for a queue item's log. Item ids come from a queue (hostile input): anything outside a
 * safe set is percent-encoded so an id can never escape `logDir`; very long ids are hashed.
 */
export function logFileName(itemId: string): string {
  const safe = itemId.replace(/[^A-Za-z0-9._=-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  const name = safe.startsWith('.') ? `%2e${safe.slice(1)}` : safe;
  if (name.length <= 200) return `${name}.log`;
  return `${name.slice(0, 120)}-${createHash('sha256').update(itemId).digest('hex').slice(0, 32)}.log`;
}

export function logFilePath(logDir: string, itemId: string): string {
  return join(logDir, logFileName(itemId));
}

/** Opens the log for appending and resolves once the file exists (so it is there before the spawn). */
export function openLogStream(path: string): Promise<WriteStream> {
  return new Promise((resolve, reject) => {
    const stream = createWriteStream(path, { flags: 'a' });
    const onError = (error: Error) => reject(error);
    stream.once('error', onError);
    stream.once('ready', () => {
      stream.off('error', onError);
      resolve(stream);
    });
  });
}

/** The last `maxBytes` of a log file, starting at a line boundary when cut; '' when there is no file. */
export async function readLogTail(path: string, maxBytes: number): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, maxBytes);
    const buf = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buf, 0, length, size - length);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    if (size <= maxBytes) return text;
    const newline = text.indexOf('\n');
    return newline >= 0 && newline < text.length - 1 ? text.slice(newline + 1) : text;
  } finally {
    await handle.close();
  }
}
