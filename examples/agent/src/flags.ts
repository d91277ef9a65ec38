import { choiceFlag } from './usage.js';

/** Flags every command that reads the agent config accepts. */
export const CONFIG_FLAGS = {
  config: { type: 'string', short: 'c' },
  'state-dir': { type: 'string' },
  source: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const CONFIG_FLAGS_HELP = `  -c, --config FILE     agent config (YAML); default ~/.config/wandb/launch-config.yaml when present
      --state-dir DIR     embedded queue and run logs; default $LAUNCH_STATE_DIR, $XDG_DATA_HOME/launch
                          or ~/.local/share/launch
      --source KIND       queue source: embedded or wandb (default: wandb when an entity and W&B
                          credentials are configured, embedded otherwise)
  -h, --help            show this help`;

export const SOURCES = ['wandb', 'embedded'] as const;

export function sourceFlag(command: string, value: string | undefined): 'wandb' | 'embedded' | undefined {
  return choiceFlag(command, 'source', value, SOURCES);
}

/** The flags that make a launch spec, shared by `enqueue` and `check` (which builds the spec `enqueue` would). */
export const SPEC_FLAGS = {
  queue: { type: 'string', short: 'q' },
  spec: { type: 'string' },
  priority: { type: 'string' },
  env: { type: 'string', multiple: true },
  'template-var': { type: 'string', multiple: true },
  cwd: { type: 'string' },
  context: { type: 'string' },
  name: { type: 'string' },
  project: { type: 'string' },
  entity: { type: 'string' },
} as const;
