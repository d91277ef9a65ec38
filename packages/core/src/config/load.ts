import { readFile } from 'node:fs/promises';
import { homedir as osHomedir } from 'node:os';
import { join, resolve } from 'node:path';
import yaml from 'js-yaml';
import { LaunchError, type ValidationIssue } from '../errors.js';
import { closest } from '../validation.js';
import { checkImageRepository } from './image-repository.js';
import { HELM_VALUES_KEYS, helmValuesIssue, isHelmValues } from './helm-values.js';
import { configValidationError, crossIssues, foldConfig, isPlainObject, layerIssues, notAMappingIssue, stripNulls } from './parse.js';
import { agentConfigSchema, type AgentConfig } from './schema.js';

/** W&B's default config location (`LAUNCH_CONFIG_FILE`), as users write it. */
export const DEFAULT_CONFIG_PATH = '~/.config/wandb/launch-config.yaml';

/** The default config file for a home directory. */
export function defaultConfigPath(homedir: string = osHomedir()): string {
  return join(homedir, '.config', 'wandb', 'launch-config.yaml');
}

/** Files larger than this are refused: a config is a few hundred bytes, a huge file is a mistake. */
const MAX_CONFIG_BYTES = 1024 * 1024;

/** Command-line flags that set config keys (the CLI parses them; values may still be strings). */
export interface AgentConfigFlags {
  /** `-q/--queue`, repeatable; a non-empty list REPLACES `queues` (W&B). */
  queues?: string[];
  /** `-e/--entity`. */
  entity?: string;
  /** `-j/--max-jobs`. */
  maxJobs?: number | string;
  /** `-v` count; leave undefined when the flag is absent, or 0 would override the file. */
  verbosity?: number | string;
  /** `-l/--log-file`; `-` means stdout. */
  logFile?: string;
  /** `--state-dir`. */
  stateDir?: string;
  /** `--source`. */
  source?: string;
}

export interface LoadAgentConfigOptions {
  /** Explicit `--config` path: a missing file is an error. Without it the default path is read if it exists. */
  path?: string;
  /** Environment to read; default `process.env`. */
  env?: Record<string, string | undefined>;
  flags?: AgentConfigFlags;
  /** Home directory for the default path and `~` expansion; default `os.homedir()`. */
  homedir?: string;
  /**
   * The file is a values file of the launch-agent Helm chart: the config is the text under its
   * `launchConfig`, and its `kanikoPvcName` counts as `WANDB_LAUNCH_KANIKO_PVC_NAME` (the chart sets it).
   */
  helmValues?: boolean;
}

/** Where a config value came from, lowest precedence first. */
export type ConfigOrigin = 'default' | 'file' | 'env' | 'flag';

export interface LoadedAgentConfig {
  config: AgentConfig;
  /** The file that was read; absent when the default file does not exist. */
  path?: string;
  /** Origin of every set value, keyed by dotted path (`max_jobs`, `builder.type`). */
  origins: Record<string, ConfigOrigin>;
  /** Things that are accepted but probably not what the user wants (W&B warns about these too). */
  warnings: string[];
}

type Kind = 'string' | 'int' | 'number';

/** Environment variables that set config keys (W&B's two, plus ours). */
export const CONFIG_ENV_VARS: ReadonlyArray<{ name: string; key: string; kind: Kind }> = [
  { name: 'WANDB_ENTITY', key: 'entity', kind: 'string' },
  { name: 'WANDB_LAUNCH_MAX_JOBS', key: 'max_jobs', kind: 'int' },
  { name: 'WANDB_LAUNCH_START_TIMEOUT', key: 'start_timeout', kind: 'number' },
  { name: 'WANDB_BASE_URL', key: 'base_url', kind: 'string' },
  { name: 'WANDB_API_KEY', key: 'api_key', kind: 'string' },
  { name: 'LAUNCH_STATE_DIR', key: 'state_dir', kind: 'string' },
];

const FLAGS: ReadonlyArray<{ flag: keyof AgentConfigFlags; cli: string; key: string; kind: Kind }> = [
  { flag: 'entity', cli: '--entity', key: 'entity', kind: 'string' },
  { flag: 'maxJobs', cli: '--max-jobs', key: 'max_jobs', kind: 'int' },
  { flag: 'verbosity', cli: '--verbose', key: 'verbosity', kind: 'int' },
  { flag: 'logFile', cli: '--log-file', key: 'log_file', kind: 'string' },
  { flag: 'stateDir', cli: '--state-dir', key: 'state_dir', kind: 'string' },
  { flag: 'source', cli: '--source', key: 'source', kind: 'string' },
];

const INT = /^[-+]?\d+$/;
const NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/** Converts a text value to the key's type; text that does not parse is kept so validation reports it. */
function convert(value: string, kind: Kind): unknown {
  const trimmed = value.trim();
  if (kind === 'int' && INT.test(trimmed)) return Number(trimmed);
  if (kind === 'number' && NUMBER.test(trimmed)) return Number(trimmed);
  return kind === 'string' ? value : trimmed;
}

function expandHome(path: string, homedir: string): string {
  if (path === '~') return homedir;
  if (path.startsWith('~/')) return join(homedir, path.slice(2));
  return path;
}

async function readConfigFile(path: string, explicit: boolean): Promise<{ raw: unknown; found: boolean }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) return { raw: {}, found: false };
    throw new LaunchError({
      code: code === 'ENOENT' ? 'config.not_found' : 'config.unreadable',
      stage: 'agent',
      message: code === 'ENOENT' ? `config file ${path} does not exist` : `cannot read config file ${path}: ${code ?? String(error)}`,
      hint: code === 'ENOENT' ? 'check the --config path' : undefined,
      cause: error,
    });
  }
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) {
    throw new LaunchError({ code: 'config.invalid', stage: 'agent', message: `config file ${path} is larger than 1 MiB; is it the right file?` });
  }
  try {
    // CORE_SCHEMA: plain YAML 1.2 types, no timestamps or binary that no config key takes.
    return { raw: yaml.load(text, { filename: path, schema: yaml.CORE_SCHEMA }), found: true };
  } catch (error) {
    if (error instanceof yaml.YAMLException) {
      // The reason and position only: js-yaml's snippet would quote lines of the file, secrets included.
      const line = error.mark ? error.mark.line + 1 : undefined;
      const column = error.mark ? error.mark.column + 1 : undefined;
      const where = line === undefined ? path : `${path}:${line}:${column}`;
      throw new LaunchError({
        code: 'config.yaml',
        stage: 'agent',
        message: `${where}: invalid YAML at line ${line ?? '?'}, column ${column ?? '?'}: ${error.reason}`,
        hint: 'fix the YAML syntax (indentation, a missing colon or quote)',
      });
    }
    throw error;
  }
}

function textLayer<T extends { key: string; kind: Kind }>(
  specs: ReadonlyArray<T>,
  read: (spec: T) => unknown,
): { layer: Record<string, unknown>; names: Map<string, T> } {
  const layer: Record<string, unknown> = {};
  const names = new Map<string, T>();
  for (const spec of specs) {
    const value = read(spec);
    if (value === undefined || value === '') continue;
    layer[spec.key] = typeof value === 'string' ? convert(value, spec.kind) : value;
    names.set(spec.key, spec);
  }
  return { layer, names };
}

/**
 * Loads the agent config with precedence defaults < file < environment < flags, validating every
 * layer and throwing one LaunchValidationError (code `config.invalid`) that lists every bad field,
 * naming the file path, the variable or the flag. A YAML syntax error is a LaunchError (code
 * `config.yaml`) naming file, line and column; a missing explicit `--config` file is `config.not_found`.
 */
export async function loadAgentConfig(options: LoadAgentConfigOptions = {}): Promise<LoadedAgentConfig> {
  const home = options.homedir ?? osHomedir();
  const env = options.env ?? process.env;
  const flags = options.flags ?? {};
  const explicit = options.path !== undefined;
  const path = resolve(explicit ? expandHome(options.path!, home) : defaultConfigPath(home));
  let subject = `agent config ${path}`;

  const read = await readConfigFile(path, explicit);
  let raw = read.raw;
  const found = read.found;
  let env2 = env;
  if (options.helmValues) {
    const values = helmLaunchConfig(raw, path);
    subject = `launchConfig in ${path}`;
    raw = values.raw;
    if (values.pvc) env2 = { ...env, WANDB_LAUNCH_KANIKO_PVC_NAME: values.pvc };
  }
  const issues: ValidationIssue[] = [];
  let file: Record<string, unknown> = {};
  if (raw !== undefined && raw !== null) {
    if (!isPlainObject(raw)) issues.push(notAMappingIssue(raw));
    else if (isHelmValues(raw)) throw configValidationError(subject, [helmValuesIssue(raw)], [raw['api_key']]);
    else file = stripNulls(raw);
  }
  issues.push(...layerIssues(file));

  const envLayer = textLayer(CONFIG_ENV_VARS, (spec) => env[spec.name]);
  issues.push(...layerIssues(envLayer.layer, (key) => `$${envLayer.names.get(key)?.name ?? key}`));

  const flagLayer = textLayer(FLAGS, (spec) => flags[spec.flag]);
  if (flags.queues !== undefined && flags.queues.length > 0) flagLayer.layer['queues'] = flags.queues;
  issues.push(...layerIssues(flagLayer.layer, (key) => (key === 'queues' ? '--queue' : (flagLayer.names.get(key)?.cli ?? key))));

  const secrets = [file['api_key'], envLayer.layer['api_key']];
  if (issues.length > 0) throw configValidationError(subject, issues, secrets);

  const merged = { ...file, ...envLayer.layer, ...flagLayer.layer };
  const result = agentConfigSchema.safeParse(merged);
  // Each layer passed on its own and no check spans layers, so this only fails on a bug; report it all the same.
  if (!result.success) throw configValidationError(subject, layerIssues(merged), secrets);
  const config = foldConfig(result.data);
  const cross = crossIssues(config, { env: env2 });
  if (cross.length > 0) throw configValidationError(subject, cross, secrets);
  for (const key of ['state_dir', 'log_file'] as const) {
    const value = config[key];
    if (value !== undefined) config[key] = expandHome(value, home);
  }

  return {
    config,
    ...(found ? { path } : {}),
    origins: origins(config, file, envLayer.layer, flagLayer.layer),
    warnings: agentConfigWarnings(config, file, options.helmValues ? `launchConfig in ${path}` : path),
  };
}

/**
 * The agent config held by a Helm values file: `launchConfig` as YAML text (the chart's form) or,
 * leniently, as a mapping. A YAML error names the line inside launchConfig.
 */
function helmLaunchConfig(values: unknown, path: string): { raw: unknown; pvc?: string } {
  const subject = `Helm values file ${path}`;
  if (!isPlainObject(values) || !Object.keys(values).some((k) => HELM_VALUES_KEYS.has(k))) {
    throw configValidationError(subject, [
      {
        path: '',
        expected: 'a Helm values file of the launch-agent chart',
        found: isPlainObject(values) ? 'no chart keys (launchConfig, agent, …)' : 'no mapping',
        message:
          'expected a Helm values file of the launch-agent chart (with launchConfig), found no chart keys; is it the agent config itself? Then drop --from-values',
      },
    ]);
  }
  const pvc = typeof values['kanikoPvcName'] === 'string' && values['kanikoPvcName'] !== '' ? values['kanikoPvcName'] : undefined;
  const text = values['launchConfig'];
  if (text === undefined || text === null || (typeof text === 'string' && text.trim() === '')) {
    throw configValidationError(subject, [
      {
        path: 'launchConfig',
        expected: "the agent config's text",
        found: 'nothing',
        message: "expected the agent config's text (launchConfig: | followed by the config), found nothing: the agent would start with no queue",
      },
    ]);
  }
  if (isPlainObject(text)) return { raw: text, ...(pvc ? { pvc } : {}) };
  if (typeof text !== 'string') {
    throw configValidationError(subject, [
      {
        path: 'launchConfig',
        expected: "the agent config's text",
        found: Array.isArray(text) ? 'a list' : typeof text,
        message: `expected the agent config's text (launchConfig: |), found ${Array.isArray(text) ? 'a list' : typeof text}`,
      },
    ]);
  }
  try {
    return { raw: yaml.load(text, { filename: `${path} (launchConfig)`, schema: yaml.CORE_SCHEMA }), ...(pvc ? { pvc } : {}) };
  } catch (error) {
    if (error instanceof yaml.YAMLException) {
      const line = error.mark ? error.mark.line + 1 : '?';
      const column = error.mark ? error.mark.column + 1 : '?';
      throw new LaunchError({
        code: 'config.yaml',
        stage: 'agent',
        message: `${path}: launchConfig is not valid YAML at its line ${line}, column ${column}: ${error.reason}`,
        hint: 'fix the YAML under launchConfig (indentation, a missing colon or quote)',
      });
    }
    throw error;
  }
}

function origins(
  config: AgentConfig,
  file: Record<string, unknown>,
  envLayer: Record<string, unknown>,
  flagLayer: Record<string, unknown>,
): Record<string, ConfigOrigin> {
  const out: Record<string, ConfigOrigin> = {};
  const top = (key: string): ConfigOrigin => (key in flagLayer ? 'flag' : key in envLayer ? 'env' : key in file ? 'file' : 'default');
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined) continue;
    if (key === 'builder' || key === 'registry' || key === 'environment') {
      const written = isPlainObject(file[key]) ? (file[key] as Record<string, unknown>) : {};
      for (const [inner, innerValue] of Object.entries(value as Record<string, unknown>)) {
        if (innerValue !== undefined) out[`${key}.${inner}`] = inner in written ? 'file' : 'default';
      }
      continue;
    }
    out[key] = top(key);
  }
  // `queue` comes from the file and is appended even when flags replace `queues`.
  if (out['queues'] === 'default' && 'queue' in file) out['queues'] = 'file';
  return out;
}

/**
 * What W&B warns about, and what we accept but will not use: an ignored `project`, unrecognised
 * `environment` keys (W&B's GCP docs write `environment.project`), the deprecated W&B registry
 * block, and registry hosts that are not ECR, GAR or ACR. `where` prefixes file-level warnings.
 */
export function agentConfigWarnings(config: AgentConfig, file: Record<string, unknown>, where: string): string[] {
  const out: string[] = [];
  if ('project' in file) out.push(`${where}: project is ignored by the agent (W&B drops it too); the project comes from each job`);
  const environment = isPlainObject(file['environment']) ? file['environment'] : {};
  for (const key of Object.keys(environment)) {
    if (key === 'type' || key === 'region') continue;
    const why =
      key === 'project'
        ? 'the Google Cloud project comes from the credentials (as in W&B, which warns about it too)'
        : `it is not an environment key (W&B warns about it too)${closest(key, ['type', 'region']) ? `; did you mean "${closest(key, ['type', 'region'])}"?` : ''}`;
    out.push(`environment.${key}: ignored: ${why}`);
  }
  const registry = config.registry;
  if (registry && registry.type !== 'oci' && registry.type !== 'local' && Object.keys(registry).length > 0) {
    out.push('registry: W&B deprecates the registry block: put the image repository in builder.destination');
  }
  const ours = config.registry?.type === 'oci' || config.registry?.type === 'local';
  for (const [where, uri] of [
    ['builder.destination', config.builder?.destination],
    ['registry.uri', config.registry?.uri],
  ] as const) {
    if (uri === undefined || ours) continue;
    const checked = checkImageRepository(uri);
    if (checked.ok && checked.value.kind === 'other') {
      out.push(`${where}: registry host "${checked.value.host}" is not ECR, GAR or ACR; make sure the agent can push images there`);
    }
  }
  return out;
}
