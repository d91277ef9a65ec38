import { describe, expect, it } from 'vitest';
import { LaunchError, LaunchValidationError } from '@launch/core';
import { resolveEndpoint } from './engine.js';
import { createLocalContainerRunner } from './runner.js';

describe('local-container runner options', () => {
  it('declares its contract: local-container and local, adopt, not remote, needs an image, mounts code', () => {
    const runner = createLocalContainerRunner({ logDir: '/tmp/launch-unused', socketPath: '/tmp/launch-unused.sock' });
    expect(runner.resources).toEqual(['local-container', 'local']);
    expect(runner.capabilities).toEqual({ adopt: true, remote: false, needsImage: true, mountsCode: true });
  });

  it('refuses a misspelt option, naming it and suggesting the right one', () => {
    const error = (() => {
      try {
        createLocalContainerRunner({ logDir: '/tmp/x', socketPth: '/x' } as never);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(LaunchValidationError);
    expect((error as Error).message).toContain('socketPth');
    expect((error as Error).message).toContain('socketPath');
  });

  it('refuses socketPath together with dockerHost, and a bad grace period', () => {
    expect(() => createLocalContainerRunner({ logDir: '/tmp/x', socketPath: '/a', dockerHost: 'unix:///b' })).toThrow('not both');
    expect(() => createLocalContainerRunner({ logDir: '/tmp/x', killGracePeriodMs: -1 })).toThrow('killGracePeriodMs');
  });

  it('resolves the engine address as DOCKER_HOST does, refusing what it cannot use', () => {
    expect(resolveEndpoint(undefined, undefined, {})).toMatchObject({ kind: 'unix', socketPath: '/var/run/docker.sock' });
    expect(resolveEndpoint(undefined, undefined, { DOCKER_HOST: 'unix:///run/d.sock' })).toMatchObject({ socketPath: '/run/d.sock' });
    expect(resolveEndpoint(undefined, 'tcp://127.0.0.1:2375', {})).toMatchObject({ kind: 'tcp', host: '127.0.0.1', port: 2375 });
    expect(resolveEndpoint('/s.sock', 'tcp://x:1', {})).toMatchObject({ socketPath: '/s.sock' });
    for (const [host, env] of [
      ['tcp://127.0.0.1:2376', {}],
      ['tcp://127.0.0.1:2375', { DOCKER_TLS_VERIFY: '1' }],
      ['ssh://me@host', {}],
      ['unix://relative.sock', {}],
    ] as const) {
      const error = (() => {
        try {
          resolveEndpoint(undefined, host, env);
        } catch (e) {
          return e;
        }
      })();
      expect(LaunchError.isInstance(error), host).toBe(true);
      expect((error as LaunchError).message).toContain(host);
    }
  });
});
