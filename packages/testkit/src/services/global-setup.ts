/**
 * vitest global setup: starts the real daemons that tests share, each only when its binaries are
 * installed, and publishes where they listen through the environment variables documented in
 * `env.ts` (forked test workers inherit them). The returned teardown stops every daemon by its PID,
 * unmounts what dockerd left mounted and removes the temp directory. See README.md beside this file.
 *
 * `LAUNCH_TEST_SERVICES=none` starts nothing (tests needing a service then skip, or fail under `CI`).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unmountAllUnder, pidsMentioning } from './daemon.js';
import { BASE_IMAGE, dockerUnavailableReason, loadBaseImage, startDockerEngine } from './docker-engine.js';
import { registryUnavailableReason, startRegistry } from './registry.js';
import { startReaper } from './reaper.js';
import { startTokenServer } from './token-server.js';

const PUBLISHED = [
  'LAUNCH_TEST_DOCKER_SOCKET',
  'LAUNCH_TEST_BASE_IMAGE',
  'LAUNCH_TEST_REGISTRY',
  'LAUNCH_TEST_REGISTRY_BASIC',
  'LAUNCH_TEST_REGISTRY_BEARER',
  'LAUNCH_TEST_REGISTRY_USER',
  'LAUNCH_TEST_REGISTRY_PASSWORD',
] as const;

const note = (line: string) => process.stderr.write(`[test services] ${line}\n`);

export async function setup(): Promise<() => Promise<void>> {
  if (process.env.LAUNCH_TEST_SERVICES === 'none') {
    note('LAUNCH_TEST_SERVICES=none: starting no daemons');
    return async () => {};
  }
  // Short paths: dockerd's and containerd's unix sockets live below this directory (108-byte limit).
  const root = mkdtempSync(join(tmpdir().length > 40 ? '/tmp' : tmpdir(), 'launch-services-'));
  const logDir = join(root, 'logs');
  mkdirSync(logDir);
  // Tears everything down if this process dies without running teardown (a signal, a crash).
  const stopReaper = startReaper(root);
  const stops: Array<() => Promise<void>> = [];
  const env: Partial<Record<(typeof PUBLISHED)[number], string>> = {};
  const username = 'launch-test';
  const password = randomBytes(18).toString('base64url');

  const teardown = async (keepLogs: boolean) => {
    stopReaper();
    await Promise.allSettled(stops.map((stop) => stop()));
    for (const key of PUBLISHED) if (process.env[key] === env[key]) delete process.env[key];
    const stuck = await unmountAllUnder(root);
    // Anything still naming our directory (containerd, shims) was started by our daemons.
    for (const pid of pidsMentioning(root)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (stuck.length) note(`could not unmount ${stuck.join(', ')}; leaving ${root}`);
    else if (keepLogs) {
      for (const entry of ['docker', 'registry-plain', 'registry-basic', 'registry-bearer', 'token']) {
        rmSync(join(root, entry), { recursive: true, force: true, maxRetries: 3 });
      }
    } else rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  };

  const started = Date.now();
  const tasks: Array<Promise<void>> = [];
  const skipped: string[] = [];

  const dockerReason = dockerUnavailableReason();
  if (dockerReason) skipped.push(`Docker engine: ${dockerReason}`);
  else {
    tasks.push(
      (async () => {
        const engine = await startDockerEngine(join(root, 'docker'), logDir);
        stops.push(engine.stop);
        try {
          await loadBaseImage(engine.socketPath, BASE_IMAGE);
        } catch (error) {
          throw new Error(
            `loading ${BASE_IMAGE} into dockerd failed (log ${engine.daemon.logFile}): ${error instanceof Error ? error.message : String(error)}`,
          );
        }
        env.LAUNCH_TEST_DOCKER_SOCKET = engine.socketPath;
        env.LAUNCH_TEST_BASE_IMAGE = BASE_IMAGE;
      })(),
    );
  }

  const registryReason = registryUnavailableReason('none');
  if (registryReason) skipped.push(`registries: ${registryReason}`);
  else {
    tasks.push(
      (async () => {
        const plain = await startRegistry('plain', join(root, 'registry-plain'), logDir, { kind: 'none' });
        stops.push(plain.stop);
        env.LAUNCH_TEST_REGISTRY = plain.address;
      })(),
    );
    const basicReason = registryUnavailableReason('htpasswd');
    const tokenReason = registryUnavailableReason('token');
    if (basicReason) skipped.push(`Basic-auth registry: ${basicReason}`);
    if (tokenReason) skipped.push(`Bearer-auth registry: ${tokenReason}`);
    if (!basicReason && !tokenReason) {
      env.LAUNCH_TEST_REGISTRY_USER = username;
      env.LAUNCH_TEST_REGISTRY_PASSWORD = password;
      tasks.push(
        (async () => {
          const basic = await startRegistry('basic', join(root, 'registry-basic'), logDir, { kind: 'htpasswd', username, password });
          stops.push(basic.stop);
          env.LAUNCH_TEST_REGISTRY_BASIC = basic.address;
        })(),
        (async () => {
          const tokenDir = join(root, 'token');
          mkdirSync(tokenDir);
          const tokens = await startTokenServer({ dir: tokenDir, username, password });
          stops.push(tokens.close);
          const bearer = await startRegistry('bearer', join(root, 'registry-bearer'), logDir, {
            kind: 'token',
            realm: tokens.realm,
            service: tokens.service,
            issuer: tokens.issuer,
            certificatePath: tokens.certificatePath,
          });
          stops.push(bearer.stop);
          env.LAUNCH_TEST_REGISTRY_BEARER = bearer.address;
        })(),
      );
    }
  }

  const results = await Promise.allSettled(tasks);
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason instanceof Error ? r.reason.message : String(r.reason)] : []));
  if (failures.length) {
    await teardown(true);
    throw new Error(`test services failed to start (logs kept in ${logDir}):\n- ${failures.join('\n- ')}`);
  }
  Object.assign(process.env, env);
  for (const line of skipped) note(`not started: ${line}`);
  const what = [
    env.LAUNCH_TEST_DOCKER_SOCKET && 'dockerd',
    env.LAUNCH_TEST_REGISTRY && 'plain registry',
    env.LAUNCH_TEST_REGISTRY_BASIC && 'Basic registry',
    env.LAUNCH_TEST_REGISTRY_BEARER && 'Bearer registry',
  ].filter(Boolean);
  note(`${what.length ? what.join(', ') : 'nothing'} ready in ${Date.now() - started} ms under ${root}`);

  let done = false;
  return async () => {
    if (done) return;
    done = true;
    await teardown(false);
  };
}
