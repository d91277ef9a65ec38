import type { ServerResponse } from 'node:http';
import type { KubeletInternals, LogLine } from './kubelet.js';
import { badRequest, status, ApiError } from './status.js';
import type { Json, KubeObject } from './types.js';

function render(lines: LogLine[], timestamps: boolean): string {
  return lines.map((l) => `${timestamps ? `${new Date(l.at).toISOString()} ` : ''}${l.text}\n`).join('');
}

/**
 * Serves `pods/{name}/log` as the apiserver proxies it from the kubelet: text/plain, honouring container, tailLines,
 * sinceSeconds, limitBytes, timestamps, previous and follow, with the real 400 messages for containers not started.
 */
export function servePodLog(kubelet: KubeletInternals, pod: KubeObject, query: Record<string, string>, res: ServerResponse): void {
  const podName = pod.metadata.name!;
  const all: Json[] = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  let containerName = query.container;
  if (!containerName) {
    const app: Json[] = pod.spec?.containers ?? [];
    if (app.length !== 1) {
      throw badRequest(`a container name must be specified for pod ${podName}, choose one of: [${app.map((c) => c.name).join(' ')}]`);
    }
    containerName = app[0].name as string;
  }
  if (!all.some((c) => c.name === containerName)) throw badRequest(`container ${containerName} is not valid for pod ${podName}`);
  const run = kubelet.run(pod.metadata.uid!);
  const container = run && [...run.containers, ...run.initContainers].find((c) => c.name === containerName);
  const waiting = container?.state?.waiting as { reason?: string } | undefined;
  const previous = query.previous === 'true';
  if (!container || (waiting && !previous && container.restartCount === 0 && !container.logs.length)) {
    const reason = waiting?.reason ?? 'ContainerCreating';
    const detail = reason === 'ErrImagePull' || reason === 'ImagePullBackOff' ? 'trying and failing to pull image' : reason;
    throw badRequest(`container "${containerName}" in pod "${podName}" is waiting to start: ${detail}`);
  }
  if (previous && container.restartCount === 0) {
    throw badRequest(`previous terminated container "${containerName}" in pod "${podName}" not found`);
  }
  const source = () => (previous ? container.previousLogs : container.logs);
  const timestamps = query.timestamps === 'true';
  const select = (lines: LogLine[]) => {
    let out = lines;
    if (query.sinceSeconds) {
      const since = Date.now() - Number(query.sinceSeconds) * 1000;
      out = out.filter((l) => l.at >= since);
    }
    if (query.tailLines !== undefined) {
      const n = Number(query.tailLines);
      out = n <= 0 ? [] : out.slice(-n);
    }
    return out;
  };
  let text = render(select(source()), timestamps);
  const limit = query.limitBytes ? Number(query.limitBytes) : undefined;
  if (limit !== undefined) {
    if (!(limit > 0)) throw new ApiError(status(422, 'Invalid', 'limitBytes: Invalid value: must be greater than 0'));
    text = Buffer.from(text).subarray(0, limit).toString('utf8');
  }
  const follow = query.follow === 'true' && !previous;
  if (!follow) {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
  res.write(text);
  let sent = source().length;
  const finished = () => container.state?.terminated !== undefined || !kubelet.run(pod.metadata.uid!);
  const unsubscribe = run!.onChange(() => {
    const lines = source();
    if (lines.length > sent) {
      res.write(render(lines.slice(sent), timestamps));
      sent = lines.length;
    }
    if (finished()) {
      unsubscribe();
      res.end();
    }
  });
  res.on('close', () => unsubscribe());
  if (finished()) {
    unsubscribe();
    res.end();
  }
}
