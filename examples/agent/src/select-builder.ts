import type { AgentConfig, Builder } from '@launch/core';
import { createNoopBuilder } from '@launch/builders';

/**
 * The builder for jobs that need an image. Only `noop` is wired so far: local processes need no
 * image, and image jobs run the image they name. Docker and kaniko plug in here by `builder.type`.
 */
export function selectBuilder(config: AgentConfig): Builder {
  void config.builder;
  return createNoopBuilder();
}
