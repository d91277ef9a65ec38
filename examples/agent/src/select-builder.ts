import type { AgentConfig, Builder } from '@launch/core';
import * as builders from '@launch/builders';

/**
 * The builder for jobs that need an image. Only `noop` is wired so far (local processes need no
 * image); docker and kaniko plug in here from `@launch/builders` as they land. Looked up by name so
 * that the binary still starts while a builder is missing from the installed package.
 */
export function selectBuilder(config: AgentConfig): Builder | undefined {
  const create = (builders as Record<string, unknown>).createNoopBuilder;
  void config.builder;
  return typeof create === 'function' ? (create as () => Builder)() : undefined;
}
