import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { Log } from '@kubernetes/client-node';
import type { Logger } from '@launch/core';
import type { Cluster } from './cluster.js';

/** How long `close()` waits for the API server to end a followed log (the container exited) before aborting it. */
const DRAIN_MS = 2000;

export interface LogStream {
  /** Waits briefly for the stream to end by itself (the last lines of an exited container), then aborts it. */
  close(): Promise<void>;
}

/**
 * Follows one container's log (`GET pods/<pod>/log?follow=true`) and hands each chunk to `onChunk` as text.
 * A failed stream is logged and ends; the run's outcome never depends on it.
 */
export function createLogStream(o: {
  cluster: Cluster;
  namespace: string;
  pod: string;
  container?: string;
  logger: Logger;
  onChunk: (text: string) => void;
}): LogStream {
  const decoder = new StringDecoder('utf8');
  let ended = false;
  let resolveEnded!: () => void;
  const endedP = new Promise<void>((r) => (resolveEnded = r));
  const end = () => {
    if (ended) return;
    ended = true;
    const rest = decoder.end();
    if (rest) o.onChunk(rest);
    resolveEnded();
  };
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = decoder.write(chunk);
      if (text) o.onChunk(text);
      cb();
    },
    final(cb) {
      end();
      cb();
    },
  });
  sink.on('error', end);
  sink.on('close', end);
  let controller: AbortController | undefined;
  let closing = false;
  const started = new Log(o.cluster.kc)
    .log(o.namespace, o.pod, o.container ?? '', sink, { follow: true })
    .then((c) => {
      controller = c;
      if (closing) c.abort();
    })
    .catch((error: unknown) => {
      o.logger.warn({ pod: o.pod, err: error instanceof Error ? error.message : String(error) }, "could not stream the pod's log");
      end();
    });
  return {
    async close() {
      if (closing) return endedP;
      await started;
      await Promise.race([endedP, new Promise((r) => setTimeout(r, DRAIN_MS).unref())]);
      closing = true;
      controller?.abort();
      end();
    },
  };
}
