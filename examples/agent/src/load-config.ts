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
    if (LaunchError.isInstance(error) && (error.code.startsWith('config.') || error.name === 'LaunchValidationError')) {
      throw new ConfigError(error.hint ? `${error.message}\nhint: ${error.hint}` : error.message);
    }
    throw error;
  }
}
