import Docker from 'dockerode';

export interface PushTestImageOptions {
  /** The Docker engine's socket (`dockerService().socketPath`). */
  socketPath: string;
  /** A local image to push (`dockerService().baseImage`). */
  baseImage: string;
  /** Where to push it: `host:port/repository:tag`. */
  image: string;
  /** Credentials for the registry, sent as `X-Registry-Auth`. */
  auth?: { username: string; password: string };
}

/**
 * Tags `baseImage` as `image` in the engine, pushes it with dockerode (the engine does the registry's
 * Basic or Bearer flow itself) and removes the local tag again, so that the image then exists only in
 * the registry. Throws with the engine's error when the push fails.
 */
export async function pushTestImage(options: PushTestImageOptions): Promise<void> {
  const docker = new Docker({ socketPath: options.socketPath });
  const colon = options.image.lastIndexOf(':');
  if (colon <= options.image.lastIndexOf('/')) throw new Error(`pushTestImage: ${options.image} has no tag`);
  const repo = options.image.slice(0, colon);
  const tag = options.image.slice(colon + 1);
  const serveraddress = repo.slice(0, repo.indexOf('/'));
  await docker.getImage(options.baseImage).tag({ repo, tag });
  try {
    // The engine wants X-Registry-Auth even for an open registry.
    const stream = await docker.getImage(options.image).push({
      authconfig: options.auth ? { username: options.auth.username, password: options.auth.password, serveraddress } : { serveraddress },
    });
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(stream, (error: Error | null, events: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
        const failed = error?.message ?? events.find((e) => e.error)?.error;
        if (failed) reject(new Error(`pushing ${options.image} failed: ${failed}`));
        else resolve();
      });
    });
  } finally {
    await docker
      .getImage(options.image)
      .remove()
      .catch(() => undefined);
  }
}
