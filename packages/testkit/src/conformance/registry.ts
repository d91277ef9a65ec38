import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LaunchError, type Registry, type RegistryCredentials } from '@launch/core';

export { pushTestImage, type PushTestImageOptions } from '../services/push-image.js';

export interface RegistryFixture {
  registry: Registry;
  /** Puts an image into the registry as `<registry.uri>:<tag>` (e.g. with {@link pushTestImage}). */
  push(tag: string): Promise<void>;
  /** What `credentials()` must return: the configured credentials, or null for an open registry. */
  credentials: RegistryCredentials | null;
  /** The host the registry's errors must name (e.g. `127.0.0.1:5000`). */
  host: string;
  /**
   * Whether pods need a pull secret for this registry; default: exactly when it has credentials. (W&B makes none
   * for ACR, whose nodes pull with their own identity.)
   */
  needsPullSecret?: boolean;
  /** The same registry configured with `password` instead of the right one; absent for an open registry. */
  withPassword?(password: string): Registry;
  cleanup?(): Promise<void> | void;
}

const ctx = () => ({ logger: { debug() {}, info() {}, warn() {}, error() {} } });

/** Every message, hint and cause message of an error chain, to check that no secret leaks into any. */
function errorText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 10; depth++) {
    if (current instanceof Error) {
      parts.push(current.message, String((current as { hint?: unknown }).hint ?? ''), current.stack ?? '');
      current = (current as { cause?: unknown }).cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join('\n');
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

/**
 * The Registry contract, checked against one backend (unstorage's `testDriver()` pattern). Call it
 * in a test file: `describeRegistry('oci (basic auth)', async () => ({ registry, push, credentials, host, withPassword }))`.
 */
export function describeRegistry(name: string, setup: () => Promise<RegistryFixture> | RegistryFixture): void {
  describe(`Registry conformance: ${name}`, () => {
    let fx!: RegistryFixture;
    let pushed!: string;

    beforeAll(async () => {
      fx = await setup();
      pushed = `conf-${randomBytes(4).toString('hex')}`;
      await fx.push(pushed);
    });

    afterAll(async () => {
      await fx?.cleanup?.();
    });

    const image = (tag: string) => `${fx.registry.uri}:${tag}`;

    it('declares its contract version, name, uri and whether pods need a pull secret', () => {
      expect(fx.registry.specificationVersion).toBe('v1');
      expect(fx.registry.name).toMatch(/\S/);
      expect(fx.registry.uri.startsWith(`${fx.host}/`)).toBe(true);
      expect(fx.registry.needsPullSecret).toBe(fx.needsPullSecret ?? fx.credentials !== null);
    });

    it('returns its credentials', async () => {
      expect(await fx.registry.credentials(ctx())).toEqual(fx.credentials);
    });

    it('finds an image after it was pushed, and again on a second ask', async () => {
      expect(await fx.registry.imageExists(image(pushed), ctx())).toBe(true);
      expect(await fx.registry.imageExists(image(pushed), ctx())).toBe(true);
    });

    it('answers false for a tag or digest that was never pushed', async () => {
      expect(await fx.registry.imageExists(image(`missing-${randomBytes(4).toString('hex')}`), ctx())).toBe(false);
      expect(await fx.registry.imageExists(`${fx.registry.uri}@sha256:${'0'.repeat(64)}`, ctx())).toBe(false);
    });

    it('answers concurrent checks consistently', async () => {
      const tags = [pushed, 'missing-a', pushed, 'missing-b', pushed];
      const answers = await Promise.all(tags.map((tag) => fx.registry.imageExists(image(tag), ctx())));
      expect(answers).toEqual([true, false, true, false, true]);
    });

    it('refuses an invalid image reference with a LaunchError naming what was found', async () => {
      const error = await rejection(fx.registry.imageExists(`${fx.registry.uri}:bad tag!`, ctx()));
      expect(LaunchError.isInstance(error)).toBe(true);
      expect((error as Error).message).toContain('bad tag!');
    });

    it('a wrong password fails with RegistryAuth naming the registry and showing no password', async (context) => {
      if (!fx.withPassword || !fx.credentials) {
        context.skip();
        return;
      }
      const wrong = `wrong-${randomBytes(6).toString('hex')}`;
      const error = await rejection(fx.withPassword(wrong).imageExists(image(pushed), ctx()));
      expect(LaunchError.isInstance(error)).toBe(true);
      const e = error as LaunchError;
      expect(e.category).toBe('RegistryAuth');
      expect(e.retryable).toBe(false);
      expect(e.message).toContain(fx.host);
      expect(e.hint).toBeTruthy();
      const text = errorText(error);
      expect(text).not.toContain(wrong);
      expect(text).not.toContain(fx.credentials.password);
    });
  });
}
