import { LaunchError, loadAgentConfig, type AgentConfig } from '@launch/core';
import type { Io } from './io.js';

/** The config flags, in the loader's terms. */
export interface ConfigFlags {
  queues?: string[];
  entity?: string;
  maxJobs?: number;
  verbosity?: number;
  logFile?: string;
  stateDir?: string;
  source?: 'wandb' | 'embedded';
}

export interface LoadedConfig {
  config: AgentConfig;
  path?: string;
  /** Origin (`default`, `file`, `env`, `flag`) of every set value, by dotted path. */
  origins: Record<string, string>;
  warnings: string[];
}

/** A config the user must fix: printed in full (every bad field), exit 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Loads file + environment + flags; a bad or missing config file becomes a ConfigError. */
export async function loadConfig(io: Io, path: string | undefined, flags: ConfigFlags): Promise<LoadedConfig> {
  try {
    return await loadAgentConfig({ path, env: io.env, homedir: io.homedir, flags });
  } catch (error) {
    throw asConfigError(error);
  }
}

/**
 * Errors that mean "fix your config or credentials" (exit 2) rather than "something failed while
 * running" (exit 1): config loading, agent options, and the W&B source's set-up checks.
 */
const CONFIG_CODES =
  /^(?:config\..+|agent\.options|health\.listen_failed|wandb\.(?:no_api_key|no_entity|no_queues|base_url_invalid|options_invalid|queue_not_found|entity_not_found|unauthorized|login_failed))$/;

export function isConfigProblem(error: unknown): error is LaunchError {
  return LaunchError.isInstance(error) && CONFIG_CODES.test(error.code);
}

/** A config-type LaunchError as a ConfigError (message plus hint); other errors unchanged. */
export function asConfigError(error: unknown): unknown {
  if (!isConfigProblem(error)) return error;
  return new ConfigError(error.hint ? `${error.message}\nhint: ${error.hint}` : error.message);
}
