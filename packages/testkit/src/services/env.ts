/**
 * Where the shared real daemons listen. The vitest global setup starts them (when their binaries are
 * installed) and publishes these variables; forked test workers inherit them.
 *
 * - `LAUNCH_TEST_DOCKER_SOCKET`: a dockerd on a private unix socket (no bridge; use network host or none)
 * - `LAUNCH_TEST_BASE_IMAGE`: a busybox image made locally and loaded into that engine
 * - `LAUNCH_TEST_REGISTRY`: a Distribution registry without auth (`127.0.0.1:PORT`)
 * - `LAUNCH_TEST_REGISTRY_BASIC`: one behind htpasswd Basic auth
 * - `LAUNCH_TEST_REGISTRY_BEARER`: one behind the Bearer token flow (token server from the test kit)
 * - `LAUNCH_TEST_REGISTRY_USER`, `LAUNCH_TEST_REGISTRY_PASSWORD`: credentials of both authenticated registries
 */
export interface DockerService {
  socketPath: string;
  baseImage: string;
}

export interface RegistryServices {
  plain: string;
  basic: string;
  bearer: string;
  username: string;
  password: string;
}

export function dockerService(): DockerService | undefined {
  const socketPath = process.env.LAUNCH_TEST_DOCKER_SOCKET;
  const baseImage = process.env.LAUNCH_TEST_BASE_IMAGE;
  return socketPath && baseImage ? { socketPath, baseImage } : undefined;
}

export function registryServices(): RegistryServices | undefined {
  const e = process.env;
  if (!e.LAUNCH_TEST_REGISTRY || !e.LAUNCH_TEST_REGISTRY_BASIC || !e.LAUNCH_TEST_REGISTRY_BEARER) return undefined;
  if (!e.LAUNCH_TEST_REGISTRY_USER || !e.LAUNCH_TEST_REGISTRY_PASSWORD) return undefined;
  return {
    plain: e.LAUNCH_TEST_REGISTRY,
    basic: e.LAUNCH_TEST_REGISTRY_BASIC,
    bearer: e.LAUNCH_TEST_REGISTRY_BEARER,
    username: e.LAUNCH_TEST_REGISTRY_USER,
    password: e.LAUNCH_TEST_REGISTRY_PASSWORD,
  };
}

/**
 * Whether tests needing `what` may run. In CI (`CI` set) a missing service is an error, so a broken
 * set-up can never pass as "skipped"; elsewhere the tests are skipped with a line saying why.
 */
export function serviceAvailable(what: string, present: boolean): boolean {
  if (present) return true;
  if (process.env.CI) throw new Error(`${what} is not running, but CI is set: .ci/run must install it (see packages/testkit/src/services)`);
  process.stderr.write(`skipping tests that need ${what}: it is not installed here (see packages/testkit/src/services)\n`);
  return false;
}
