import { StringDecoder } from 'node:string_decoder';

/**
 * The Docker engine's JSON progress stream (build and push): one JSON object per line with
 * `stream` (build output), `status`/`progress` (pull and push), `aux`, or `error`/`errorDetail`.
 */
export interface ProgressFollower {
  /** Feed raw bytes from the engine. */
  write(chunk: Buffer | string): void;
  /** Call at the end of the stream; handles a last line without a newline. */
  end(): void;
  /** The engine's error message, when it sent one. */
  readonly error: string | undefined;
  /** The last output lines (at most the tail size). */
  tail(): string[];
  /** Packages pip reported it could not find or install. */
  readonly failedPackages: ReadonlySet<string>;
  /** Packages W&B's bootstrap script dropped (`ERROR: Failed to install: a,b.`): the build went on without them. */
  readonly droppedPackages: ReadonlySet<string>;
  /** The image id the engine reported (`aux.ID`), if any. */
  readonly imageId: string | undefined;
}

const NO_DISTRIBUTION = /No matching distribution found for ([^\s;]+)/;
const NO_VERSION = /Could not find a version that satisfies the requirement ([^\s;]+)/;
const BOOTSTRAP_FAILED = /ERROR: Failed to install: (.+?)\. During automated build process/;
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g;

/**
 * Follows a progress stream: every output line goes to `onLine` as it arrives and the last
 * `tailLines` are kept; pip failures are recognised on the way.
 */
export function followProgress(options: { tailLines: number; onLine?: (line: string) => void; maxLineLength?: number }): ProgressFollower {
  const maxLine = options.maxLineLength ?? 4096;
  const lines: string[] = [];
  const failed = new Set<string>();
  const dropped = new Set<string>();
  let error: string | undefined;
  let imageId: string | undefined;
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let partialOutput = '';

  const emit = (raw: string) => {
    const line = raw.replace(ANSI, '').replace(/\r/g, '').trimEnd();
    if (line === '') return;
    const shown = line.length > maxLine ? `${line.slice(0, maxLine)}…` : line;
    lines.push(shown);
    if (lines.length > options.tailLines) lines.shift();
    const missing = NO_DISTRIBUTION.exec(line) ?? NO_VERSION.exec(line);
    if (missing) failed.add(missing[1]!);
    const bootstrap = BOOTSTRAP_FAILED.exec(line);
    if (bootstrap) for (const name of bootstrap[1]!.split(',')) if (name.trim()) dropped.add(name.trim());
    options.onLine?.(shown);
  };

  // `stream` values carry output that may end mid-line; lines are completed across messages.
  const output = (text: string) => {
    const parts = (partialOutput + text).split('\n');
    partialOutput = parts.pop() ?? '';
    if (partialOutput.length > maxLine * 4) {
      parts.push(partialOutput);
      partialOutput = '';
    }
    for (const part of parts) emit(part);
  };

  const message = (json: string) => {
    if (json.trim() === '') return;
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(json) as Record<string, unknown>;
    } catch {
      output(`${json}\n`);
      return;
    }
    if (typeof value.stream === 'string') output(value.stream);
    if (typeof value.status === 'string') {
      const id = typeof value.id === 'string' ? `${value.id}: ` : '';
      // Per-layer progress bars are noise in a log; the other statuses (Pushed, digest, …) are kept.
      if (!/^(Downloading|Extracting|Pushing|Waiting)$/.test(value.status)) emit(`${id}${value.status}`);
    }
    const aux = value.aux as Record<string, unknown> | undefined;
    if (aux && typeof aux.ID === 'string') imageId = aux.ID;
    if (value.error !== undefined || value.errorDetail !== undefined) {
      const detail = value.errorDetail as Record<string, unknown> | undefined;
      error = String(value.error ?? detail?.message ?? 'unknown error');
      output('\n');
      emit(error);
    }
  };

  return {
    write(chunk) {
      pending += typeof chunk === 'string' ? chunk : decoder.write(chunk);
      let newline: number;
      while ((newline = pending.indexOf('\n')) !== -1) {
        message(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
      }
    },
    end() {
      pending += decoder.end();
      if (pending) message(pending);
      pending = '';
      if (partialOutput) emit(partialOutput);
      partialOutput = '';
    },
    get error() {
      return error;
    },
    tail: () => [...lines],
    failedPackages: failed,
    droppedPackages: dropped,
    get imageId() {
      return imageId;
    },
  };
}
