import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LaunchError, type Logger, type Redactor } from '@launch/core';
import { request, type Dispatcher } from 'undici';
import { backoffDelay, isRetryableStatus, parseRetryAfter, sleep, type ResolvedRetry } from '../retry.js';
import { describeFetchError } from '../transport.js';

export interface Downloader {
  /**
   * Streams a signed URL to `dest`, checking size and base64 MD5 on the way. Transport failures
   * (network errors, a connection lost mid-body, 408/429/5xx) are retried with backoff up to
   * `maxAttempts`; a digest mismatch is retried once, then fails with `wandb.digest_mismatch`.
   * `onBytes` gets every chunk's length (a failed attempt's bytes are taken back with a negative count).
   */
  toFile(input: { url: string; dest: string; digest: string; size: number; what: string; onBytes?: (n: number) => void }, signal?: AbortSignal): Promise<void>;
  /** A small signed-URL body (a manifest) as text, at most `maxBytes`. */
  text(input: { url: string; what: string; maxBytes: number }, signal?: AbortSignal): Promise<string>;
}

export interface DownloaderOptions {
  dispatcher: Dispatcher;
  retry: ResolvedRetry;
  /** Time limit for the response headers, and for any pause in the body. */
  timeoutMs: number;
  logger: Logger;
  redactor: Redactor;
  closed: AbortSignal;
}

/** A URL fit for a message: scheme, host and path; no user info and no query (signed URLs carry their signature there). */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(an invalid URL)';
  }
}

class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly retryAfterMs: number | undefined,
  ) {
    super(`HTTP ${status}`);
  }
}

class DigestMismatch extends Error {}

class TooLarge extends Error {}

/** Writing the file failed (disk full, permissions): not the network's fault, not retried. */
class LocalWrite extends Error {
  constructor(override readonly cause: NodeJS.ErrnoException) {
    super(cause.message);
  }
}

export function createDownloader(options: DownloaderOptions): Downloader {
  const { retry, logger, redactor } = options;

  /** Runs attempts of `once` until it succeeds, by the rules of {@link Downloader.toFile}. */
  async function attempts<T>(what: string, url: string, signal: AbortSignal | undefined, once: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const shown = displayUrl(url);
    const stop = signal ? AbortSignal.any([options.closed, signal]) : options.closed;
    let digestRetried = false;
    for (let attempt = 1; ; attempt++) {
      let delayMs = 0;
      try {
        return await once(stop);
      } catch (error) {
        if (stop.aborted) {
          throw new LaunchError({ code: 'wandb.download_aborted', stage: 'agent', message: `the download of ${what} was cancelled`, cause: stop.reason });
        }
        if (error instanceof DigestMismatch) {
          if (digestRetried) {
            throw new LaunchError({
              code: 'wandb.digest_mismatch',
              stage: 'agent',
              message: `${what} failed its digest check twice: ${error.message}`,
              hint: 'the stored file or its manifest entry is corrupt; upload the artifact again, or check a proxy that rewrites downloads',
            });
          }
          digestRetried = true;
          logger.warn({ what, url: shown }, `${what} failed its digest check (${error.message}); downloading it once more`);
          continue;
        }
        if (error instanceof LocalWrite) {
          throw new LaunchError({
            code: 'wandb.cache_write_failed',
            stage: 'agent',
            message: `cannot write ${what} to the cache: ${error.cause.code ?? error.message}`,
            ...(error.cause.code === 'ENOSPC' ? { hint: 'the cache directory is out of space' } : {}),
            cause: error.cause,
          });
        }
        if (error instanceof TooLarge) {
          throw new LaunchError({ code: 'wandb.download_too_large', stage: 'agent', message: `${what} is larger than ${error.message}` });
        }
        const status = error instanceof HttpStatusError ? error.status : undefined;
        const detail = status !== undefined ? `HTTP ${status}` : redactor.redact(describeFetchError(error));
        const retryable = status === undefined || isRetryableStatus(status);
        if (!retryable || attempt >= retry.maxAttempts) {
          throw new LaunchError({
            code: 'wandb.download_failed',
            stage: 'agent',
            retryable,
            message: `cannot download ${what} from ${shown}: ${detail}${retryable ? ` after ${attempt} attempts` : ''}`,
            ...(status === 403 || status === 401
              ? { hint: 'the signed URL was refused (expired, or a proxy strips its query); resolving the job again fetches fresh URLs' }
              : {}),
          });
        }
        const retryAfter = error instanceof HttpStatusError ? error.retryAfterMs : undefined;
        delayMs = retryAfter !== undefined ? Math.min(retryAfter, retry.maxRetryAfterMs) : backoffDelay(attempt, retry);
        logger.warn({ what, url: shown, attempt, delayMs, error: detail }, `downloading ${what} failed (${detail}); retrying in ${delayMs} ms`);
      }
      await sleep(delayMs, stop).catch(() => undefined);
    }
  }

  async function open(url: string, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const res = await request(url, {
      method: 'GET',
      dispatcher: options.dispatcher,
      signal,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      maxRedirections: 5,
    });
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined);
      const ra = res.headers['retry-after'];
      throw new HttpStatusError(res.statusCode, parseRetryAfter(Array.isArray(ra) ? ra[0] : ra));
    }
    return res;
  }

  return {
    async toFile(input, signal) {
      await attempts(input.what, input.url, signal, async (stop) => {
        const res = await open(input.url, stop);
        const hash = createHash('md5');
        let bytes = 0;
        const tap = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            bytes += chunk.length;
            if (bytes > input.size) {
              cb(new DigestMismatch(`the server sent more than the ${input.size} bytes the manifest lists`));
              return;
            }
            hash.update(chunk);
            input.onBytes?.(chunk.length);
            cb(null, chunk);
          },
        });
        try {
          await pipeline(res.body, tap, createWriteStream(input.dest));
          if (bytes !== input.size) throw new DigestMismatch(`got ${bytes} bytes, the manifest lists ${input.size}`);
          const digest = hash.digest('base64');
          if (digest !== input.digest) throw new DigestMismatch(`MD5 ${digest}, the manifest lists ${input.digest}`);
        } catch (error) {
          input.onBytes?.(-bytes);
          await rm(input.dest, { force: true });
          if ((error as NodeJS.ErrnoException).path === input.dest) throw new LocalWrite(error as NodeJS.ErrnoException);
          throw error;
        }
      });
    },

    async text(input, signal) {
      return attempts(input.what, input.url, signal, async (stop) => {
        const res = await open(input.url, stop);
        const chunks: Buffer[] = [];
        let bytes = 0;
        for await (const chunk of res.body) {
          bytes += (chunk as Buffer).length;
          if (bytes > input.maxBytes) {
            res.body.destroy();
            throw new TooLarge(`${input.maxBytes} bytes`);
          }
          chunks.push(chunk as Buffer);
        }
        return Buffer.concat(chunks).toString('utf8');
      });
    },
  };
}
