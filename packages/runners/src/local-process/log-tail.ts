/**
 * The last bytes a run wrote, kept in memory so a failed run's `logTail` describes this attempt only
 * (the log file is appended to across retries of the same queue item).
 */
export interface TailBuffer {
  push(chunk: Buffer): void;
  /** The last `maxLines` complete lines (a partial first line is dropped when the tail was cut). */
  text(maxLines: number): string;
}

export function createTailBuffer(maxBytes: number): TailBuffer {
  let chunks: Buffer[] = [];
  let size = 0;
  let cut = false;
  return {
    push(chunk) {
      chunks.push(chunk);
      size += chunk.length;
      // Drop whole chunks from the front while the rest still covers the cap.
      while (chunks.length > 1 && size - chunks[0]!.length >= maxBytes) {
        size -= chunks.shift()!.length;
        cut = true;
      }
    },
    text(maxLines) {
      if (size === 0) return '';
      let buf = Buffer.concat(chunks, size);
      if (buf.length > maxBytes) {
        buf = buf.subarray(buf.length - maxBytes);
        cut = true;
      }
      chunks = [buf];
      size = buf.length;
      return lastLines(buf.toString('utf8'), maxLines, cut);
    },
  };
}

/** The last `maxLines` lines of `text`; drops a partial first line when `cut`. */
export function lastLines(text: string, maxLines: number, cut: boolean): string {
  let lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (cut && lines.length > 1) lines = lines.slice(1);
  return lines.slice(-maxLines).join('\n');
}
