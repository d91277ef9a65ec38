import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeRunner } from '@launch/testkit';
import type { RunRequest } from '@launch/core';
import { createLocalProcessRunner } from './runner.js';

describeRunner('local-process', async () => {
  const logDir = await mkdtemp(join(tmpdir(), 'launch-conformance-'));
  const runner = createLocalProcessRunner({ logDir, killGracePeriodMs: 2_000 });
  let n = 0;
  const sh = (script: string, ...args: string[]) => ({ entryPoint: ['sh', '-c', script, 'sh'], args });
  return {
    runner,
    request: (overrides: Partial<RunRequest> = {}): RunRequest => ({
      runId: `run-${++n}`,
      itemId: `item-${n}`,
      queue: 'default',
      agentName: 'conformance',
      spec: {},
      entryPoint: [],
      args: [],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      resourceArgs: {},
      ...overrides,
    }),
    commands: {
      succeed: () => ({ entryPoint: ['true'], args: [] }),
      fail: (code) => sh('exit "$1"', String(code)),
      sleep: (seconds) => ({ entryPoint: ['sleep'], args: [String(seconds)] }),
      printEnv: (name) => ({ entryPoint: ['printenv'], args: [name] }),
      echo: (text) => ({ entryPoint: ['echo'], args: [text] }),
    },
    invalidRequests: [
      {
        name: 'empty entry point',
        request: { runId: 'r', itemId: 'i', queue: 'q', agentName: 'a', spec: {}, entryPoint: [], args: [], env: {}, resourceArgs: {} },
      },
    ],
    async cleanup() {
      await runner.close();
      await rm(logDir, { recursive: true, force: true });
    },
  };
});
