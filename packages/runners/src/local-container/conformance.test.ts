import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { describeRunner, dockerService, serviceAvailable } from '@launch/testkit';
import type { RunRequest } from '@launch/core';
import { createLocalContainerRunner } from './runner.js';

const docker = dockerService();

if (serviceAvailable('a Docker Engine (LAUNCH_TEST_DOCKER_SOCKET, LAUNCH_TEST_BASE_IMAGE)', docker !== undefined)) {
  describeRunner('local-container', async () => {
    const logDir = await mkdtemp(join(tmpdir(), 'launch-container-conformance-'));
    const runner = createLocalContainerRunner({ logDir, socketPath: docker!.socketPath, killGracePeriodMs: 1_000 });
    let n = 0;
    // Only `sh` and a few applets are assumed in the base image; the shell does the rest.
    const sh = (script: string, ...args: string[]) => ({ entryPoint: ['sh', '-c', script, 'sh'], args });
    const request = (overrides: Partial<RunRequest> = {}): RunRequest => ({
      runId: `run-${++n}`,
      itemId: `item-${n}`,
      queue: 'default',
      agentName: 'conformance',
      spec: {},
      image: docker!.baseImage,
      entryPoint: [],
      args: [],
      env: {},
      resourceArgs: {},
      ...overrides,
    });
    return {
      runner,
      request,
      commands: {
        succeed: () => sh('exit 0'),
        fail: (code) => sh('exit "$1"', String(code)),
        sleep: (seconds) => ({ entryPoint: ['sleep'], args: [String(seconds)] }),
        printEnv: (name) => sh('eval "v=\\${$1}"; echo "$v"', name),
        echo: (text) => sh('echo "$1"', text),
      },
      invalidRequests: [
        { name: 'no image', request: { ...request(sh('exit 0')), image: undefined } },
        { name: 'unknown resource_args key', request: request({ ...sh('exit 0'), resourceArgs: { 'no-such-flag': true } }) },
        { name: 'privileged', request: request({ ...sh('exit 0'), resourceArgs: { privileged: true } }) },
      ],
      async cleanup() {
        await runner.close();
        await rm(logDir, { recursive: true, force: true });
      },
    };
  });
} else {
  describe.skip('Runner conformance: local-container (no Docker Engine)', () => it('needs LAUNCH_TEST_DOCKER_SOCKET', () => {}));
}
