import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import type { Redactor } from '@launch/core';

/** Where text lines go. Every line passes through the redactor first: secrets never leave in clear. */
export interface LineSink {
  write(line: string): void;
  close(): Promise<void>;
}

export interface WritableLike {
  write(chunk: string): unknown;
}

export function streamSink(stream: WritableLike, redactor: Redactor): LineSink {
  return {
    write: (line) => void stream.write(redactor.redact(line) + '\n'),
    close: async () => {},
  };
}

/** A sink appending to a file (`--log-file`); `-` means stdout. */
export function fileSink(path: string, redactor: Redactor, stdout: WritableLike): LineSink {
  if (path === '-') return streamSink(stdout, redactor);
  mkdirSync(dirname(path), { recursive: true });
  const out: WriteStream = createWriteStream(path, { flags: 'a' });
  return {
    write: (line) => void out.write(redactor.redact(line) + '\n'),
    close: () => new Promise<void>((resolve) => out.end(() => resolve())),
  };
}

/** Sends each line to every sink. */
export function teeSink(...sinks: (LineSink | undefined)[]): LineSink {
  const all = sinks.filter((s): s is LineSink => s !== undefined);
  return {
    write: (line) => all.forEach((s) => s.write(line)),
    close: async () => void (await Promise.all(all.map((s) => s.close()))),
  };
}
