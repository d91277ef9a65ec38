import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import type { PodExecutor } from './kubelet.js';
import type { Json } from './types.js';

/** Pods whose container image is a kaniko executor (`gcr.io/kaniko-project/executor[:tag|@digest]`). */
export const KANIKO_IMAGE_PATTERN = /^gcr\.io\/kaniko-project\/executor(?:[:@].*)?$/;

export interface BuildStandInOptions {
  /** The test Docker engine's socket: builds and pushes happen there. */
  socketPath: string;
  /** How to reach the S3 store behind `--context=s3://bucket/key` (s3rver in tests). */
  s3?: { endpoint: string; region?: string; credentials: { accessKeyId: string; secretAccessKey: string }; forcePathStyle?: boolean };
  /**
   * Host directories standing for PVCs, by claim name: `--context=tar:///context/x.tgz` with a volume mount
   * at `/context` from claim `c` reads `<pvcDirs[c]>/x.tgz`.
   */
  pvcDirs?: Record<string, string>;
  /** Credentials to push with, by registry host (kaniko would read `/kaniko/.docker/config.json`). */
  auths?: Record<string, { username: string; password: string }>;
  /** Called with every build the stand-in runs (for tests asserting how many builds happened). */
  onBuild?: (build: StandInBuild) => void;
}

/** What the stand-in took from the container's args. */
export interface StandInBuild {
  context: string;
  dockerfile: string;
  destinations: string[];
  buildArgs: Record<string, string>;
  noPush: boolean;
}

/** Kaniko flags as cobra reads them: `--k=v`, `--k v`, and repeated flags. */
export function parseExecutorArgs(args: string[]): StandInBuild {
  const values = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-')) continue;
    const eq = arg.indexOf('=');
    let key: string;
    let value: string;
    if (eq >= 0) {
      key = arg.slice(0, eq);
      value = arg.slice(eq + 1);
    } else if (['--context', '-c', '--dockerfile', '-f', '--destination', '-d', '--build-arg'].includes(arg) && i + 1 < args.length) {
      key = arg;
      value = args[++i]!;
    } else {
      key = arg;
      value = 'true';
    }
    key = ({ '-c': '--context', '-f': '--dockerfile', '-d': '--destination' } as Record<string, string>)[key] ?? key;
    values.set(key, [...(values.get(key) ?? []), value]);
  }
  const buildArgs: Record<string, string> = {};
  for (const raw of values.get('--build-arg') ?? []) {
    const eq = raw.indexOf('=');
    if (eq > 0) buildArgs[raw.slice(0, eq)] = raw.slice(eq + 1);
  }
  const last = (k: string) => values.get(k)?.at(-1);
  return {
    context: last('--context') ?? 'dir:///workspace/',
    dockerfile: last('--dockerfile') ?? 'Dockerfile',
    destinations: values.get('--destination') ?? [],
    buildArgs,
    noPush: last('--no-push') === 'true',
  };
}

/**
 * A kaniko stand-in for the Kubernetes test server's kubelet: register it with
 * `server.kubelet.script({ image: KANIKO_IMAGE_PATTERN }, [{ pending: 'ContainerCreating' }, { running: true }, { execute: createBuildStandIn(opts) }])`.
 *
 * It reads the executor's own args from the pod (`--context`, `--dockerfile`, `--destination`,
 * `--build-arg`, `--no-push`), fetches the context from the real store (S3 through the AWS SDK, or a
 * `tar://` path on a PVC mapped to a host directory), builds it with the real Docker engine, pushes
 * each destination to the real registry, and writes the build output as the pod's log. A failed build
 * exits 1, as kaniko does. See the README for what of kaniko it does not reproduce.
 */
export function createBuildStandIn(options: BuildStandInOptions): PodExecutor {
  let docker: Promise<Dockerode> | undefined;
  const engine = () =>
    (docker ??= import('dockerode').then((mod) => {
      const Docker = ((mod as { default?: unknown }).default ?? mod) as typeof Dockerode;
      return new Docker({ socketPath: options.socketPath });
    }));

  async function openContext(pod: Json, uri: string, signal: AbortSignal): Promise<Readable> {
    const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
    if (s3) {
      if (!options.s3) throw new Error(`the stand-in has no S3 endpoint for ${uri}`);
      const { S3Client, GetObjectCommand } = await import('@aws-sdk/client-s3');
      const client = new S3Client({
        region: options.s3.region ?? 'us-east-1',
        endpoint: options.s3.endpoint,
        forcePathStyle: options.s3.forcePathStyle ?? true,
        credentials: { ...options.s3.credentials },
      });
      const object = await client.send(new GetObjectCommand({ Bucket: s3[1], Key: s3[2] }), { abortSignal: signal });
      return object.Body as Readable;
    }
    if (uri.startsWith('tar://')) {
      const path = posix.normalize(uri.slice('tar://'.length));
      const container = pod.spec?.containers?.[0] ?? {};
      for (const mount of (container.volumeMounts ?? []) as Json[]) {
        const at = posix.normalize(String(mount.mountPath)).replace(/\/+$/, '');
        if (!path.startsWith(`${at}/`)) continue;
        const volume = ((pod.spec?.volumes ?? []) as Json[]).find((v) => v.name === mount.name);
        const claim = volume?.persistentVolumeClaim?.claimName;
        const dir = claim ? options.pvcDirs?.[claim] : undefined;
        if (!dir) throw new Error(`no host directory stands for the volume mounted at ${at} (claim ${claim ?? 'none'})`);
        const file = join(dir, path.slice(at.length + 1));
        await stat(file);
        return createReadStream(file);
      }
      throw new Error(`${uri} is not on a mounted volume`);
    }
    throw new Error(`unsupported build context ${uri} (the stand-in reads s3:// and tar://)`);
  }

  return async (pod, io) => {
    const container = pod.spec?.containers?.[0] ?? {};
    const build = parseExecutorArgs(((container.args ?? []) as unknown[]).map(String));
    options.onBuild?.(build);
    if (!build.destinations.length && !build.noPush) {
      io.log('error: you must provide --destination, or use --no-push');
      return { exitCode: 1 };
    }
    const docker = await engine();
    const tag = build.destinations[0] ?? `kaniko-stand-in/${pod.metadata?.uid ?? 'build'}:latest`;
    let context: Readable;
    try {
      context = await openContext(pod, build.context, io.signal);
    } catch (error) {
      io.log(`error building image: getting build context ${build.context}: ${error instanceof Error ? error.message : String(error)}`);
      return { exitCode: 1 };
    }
    let failed: string | undefined;
    try {
      const stream = (await docker.buildImage(
        context as unknown as NodeJS.ReadableStream,
        { t: tag, dockerfile: build.dockerfile, buildargs: build.buildArgs, rm: true, forcerm: true, abortSignal: io.signal } as Dockerode.ImageBuildOptions,
      )) as NodeJS.ReadableStream;
      await new Promise<void>((resolve, reject) => {
        docker.modem.followProgress(
          stream,
          (error: Error | null) => (error ? reject(error) : resolve()),
          (event: { stream?: string; error?: string; status?: string }) => {
            if (event.error) failed = event.error;
            const text = event.stream ?? event.error ?? event.status;
            if (text && text.trim()) io.log(text.replace(/\n+$/, ''));
          },
        );
      });
    } catch (error) {
      failed ??= error instanceof Error ? error.message : String(error);
    }
    if (failed) {
      io.log(`error building image: ${failed}`);
      return { exitCode: 1 };
    }
    if (build.noPush) return { exitCode: 0 };
    for (const destination of build.destinations) {
      const colon = destination.lastIndexOf(':');
      const slash = destination.lastIndexOf('/');
      const [repo, ref] = colon > slash ? [destination.slice(0, colon), destination.slice(colon + 1)] : [destination, 'latest'];
      if (destination !== tag) await docker.getImage(tag).tag({ repo, tag: ref });
      const host = repo.slice(0, repo.indexOf('/'));
      const auth = options.auths?.[host];
      let pushError: string | undefined;
      try {
        const stream = (await docker
          .getImage(repo)
          .push({ tag: ref, authconfig: { ...(auth ?? {}), serveraddress: host }, abortSignal: io.signal } as object)) as NodeJS.ReadableStream;
        await new Promise<void>((resolve, reject) =>
          docker.modem.followProgress(
            stream,
            (error: Error | null) => (error ? reject(error) : resolve()),
            (event: { error?: string }) => {
              if (event.error) pushError = event.error;
            },
          ),
        );
      } catch (error) {
        pushError ??= error instanceof Error ? error.message : String(error);
      }
      if (pushError) {
        io.log(`error pushing image: failed to push to destination ${destination}: ${pushError}`);
        return { exitCode: 1 };
      }
      io.log(`Pushed ${destination}`);
    }
    return { exitCode: 0 };
  };
}
