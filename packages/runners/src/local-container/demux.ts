/**
 * Splits the Docker Engine's multiplexed log stream (containers without a TTY) into stdout and stderr.
 * Each frame is an 8-byte header (stream type, three zero bytes, big-endian payload length) and the
 * payload; frames may arrive split across chunks, or several in one chunk.
 */
export interface Demuxer {
  push(chunk: Buffer): void;
}

export function createDemuxer(onFrame: (stream: 'stdout' | 'stderr', payload: Buffer) => void): Demuxer {
  let pending: Buffer = Buffer.alloc(0);
  return {
    push(chunk) {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      while (pending.length - offset >= 8) {
        const type = pending[offset]!;
        const size = pending.readUInt32BE(offset + 4);
        if (pending.length - offset - 8 < size) break;
        const payload = pending.subarray(offset + 8, offset + 8 + size);
        // 0 is stdin (never sent for logs), 3 is the engine's own error frame: report both on stderr.
        if (size > 0) onFrame(type === 1 ? 'stdout' : 'stderr', payload);
        offset += 8 + size;
      }
      pending = offset === 0 ? pending : Buffer.from(pending.subarray(offset));
    },
  };
}
