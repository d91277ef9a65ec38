import { REDACTED } from '../redact.js';
import type { AgentConfig } from './schema.js';

/**
 * A copy of the config safe to print or send (`config check`, agent registration): the API key,
 * when set, is replaced by `[REDACTED]` so a reader still sees that one is configured.
 */
export function redactAgentConfig(config: AgentConfig): AgentConfig {
  return config.api_key === undefined ? { ...config } : { ...config, api_key: REDACTED };
}
