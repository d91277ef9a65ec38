import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LaunchError } from '@launch/core';
import type { ArtifactApi, ArtifactVersion } from './api.js';
import type { Downloader } from './download.js';
import { parseManifest } from './manifest.js';

/** Largest manifest read (a manifest lists every file; 64 MiB is several hundred thousand entries). */
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
/** Files downloaded at once. */
const CONCURRENCY = 4;
/** Artifacts at least this large get progress lines. */
const PROGRESS_MIN_BYTES = 8 * 1024 * 1024;

const mib = (n: number) => (n / (1024 * 1024)).toFixed(1);

export interface DownloadArtifactInput {
  version: ArtifactVersion;
  /** Empty directory to fill. */
  dir: string;
  /** `code artifact acme/proj/source-x:v1`, for messages. */
  what: string;
  onProgress?: ((line: string) => void) | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Downloads every file of an artifact version into `dir`: the manifest from its signed URL (checked
 * against the version's digest), the file URLs page by page, then each file streamed to disk and
 * checked against its manifest digest, a few at a time. Progress lines go to `onProgress` for large
 * artifacts, at every tenth of the total.
 */
export async function downloadArtifact(api: ArtifactApi, downloader: Downloader, input: DownloadArtifactInput): Promise<{ files: number; bytes: number }> {
  const { version, dir, what, signal } = input;
  const manifestText = await downloader.text(
    { url: await api.manifestUrl(version, signal), what: `the manifest of ${what}`, maxBytes: MAX_MANIFEST_BYTES },
    signal,
  );
  const entries = parseManifest(manifestText, version);
  const urls = entries.length > 0 ? await api.fileUrls(version, signal) : new Map<string, string>();
  const missing = entries.find((e) => !urls.has(e.path));
  if (missing) {
    throw new LaunchError({
      code: 'wandb.artifact_file_missing',
      stage: 'agent',
      message: `W&B lists no download URL for ${JSON.stringify(missing.path)} of ${what}, which its manifest names`,
    });
  }
  const total = entries.reduce((n, e) => n + e.size, 0);
  let done = 0;
  let reported = 0;
  const progress = (n: number) => {
    done += n;
    if (!input.onProgress || total < PROGRESS_MIN_BYTES) return;
    const tenth = Math.floor((done / total) * 10);
    if (tenth > reported) {
      reported = tenth;
      input.onProgress(`fetched ${mib(done)} of ${mib(total)} MiB of ${what}`);
    }
  };
  if (input.onProgress && total >= PROGRESS_MIN_BYTES) input.onProgress(`fetching ${mib(total)} MiB in ${entries.length} files of ${what}`);

  // Largest first, so the long downloads overlap the many small ones.
  const queue = [...entries].sort((a, b) => b.size - a.size);
  // The first failure stops the other downloads (their partial files go with the staging directory).
  const stopOthers = new AbortController();
  const workerSignal = signal ? AbortSignal.any([signal, stopOthers.signal]) : stopOthers.signal;
  let firstError: unknown;
  const workers = Array.from({ length: Math.min(CONCURRENCY, queue.length) }, async () => {
    try {
      for (let e = queue.shift(); e; e = queue.shift()) {
        const dest = join(dir, ...e.path.split('/'));
        await mkdir(dirname(dest), { recursive: true });
        const url = urls.get(e.path)!;
        await downloader.toFile({ url, dest, digest: e.digest, size: e.size, what: `${JSON.stringify(e.path)} of ${what}`, onBytes: progress }, workerSignal);
      }
    } catch (error) {
      firstError ??= error;
      stopOthers.abort();
    }
  });
  await Promise.all(workers);
  if (firstError !== undefined) throw firstError;
  return { files: entries.length, bytes: total };
}
