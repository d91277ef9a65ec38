import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { LaunchError, type RegistryCredentials } from '@launch/core';
import { describeValue } from '@launch/core/internal';

/** One `auths` entry of `~/.docker/config.json`. */
export interface DockerAuthEntry {
  /** base64 of `username:password`. */
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

/** The parts of a Docker CLI config file that name credentials. */
export interface DockerConfig {
  /** The file read (or looked for). */
  path: string;
  /** Whether the file exists. */
  found: boolean;
  auths: Record<string, DockerAuthEntry>;
  credHelpers: Record<string, string>;
  credsStore?: string;
}

/** Where credentials for one registry come from, as the Docker CLI decides it. */
export type CredentialSource =
  | { kind: 'helper'; helper: string; serverUrl: string; via: 'credHelpers' | 'credsStore' }
  | { kind: 'auths'; key: string; entry: DockerAuthEntry };

type Env = Record<string, string | undefined>;

const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (the Docker CLI's rule). */
export function dockerConfigPath(env: Env = process.env): string {
  if (env.DOCKER_CONFIG) return join(env.DOCKER_CONFIG, 'config.json');
  return join(env.HOME || homedir(), '.docker', 'config.json');
}

function configError(path: string, what: string, cause?: unknown): LaunchError {
  return new LaunchError({
    code: 'registry.docker_config_invalid',
    stage: 'build',
    category: 'RegistryAuth',
    message: `Docker config ${path} is invalid: ${what}`,
    hint: 'fix the file (docker login rewrites it), or point DOCKER_CONFIG at another directory',
    cause,
  });
}

function stringMap(path: string, field: string, value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw configError(path, `"${field}" should be an object, found ${describeValue(value)}`);
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw configError(path, `"${field}.${key}" should be a string, found ${describeValue(v)}`);
    out[key] = v;
  }
  return out;
}

/**
 * Reads a Docker CLI config file (default: {@link dockerConfigPath}). A missing file is an empty
 * config; a file that is not JSON or has fields of the wrong type is a LaunchError naming the field
 * (never a credential value).
 */
export function readDockerConfig(options: { path?: string; env?: Env } = {}): DockerConfig {
  const path = options.path ?? dockerConfigPath(options.env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { path, found: false, auths: {}, credHelpers: {} };
    throw configError(path, `cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`, error);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // The parser's message may quote the file, which holds secrets: report only that it is not JSON.
    throw configError(path, 'it is not valid JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw configError(path, `expected a JSON object, found ${describeValue(raw)}`);
  const obj = raw as Record<string, unknown>;
  const auths: Record<string, DockerAuthEntry> = {};
  if (obj.auths !== undefined) {
    if (typeof obj.auths !== 'object' || obj.auths === null || Array.isArray(obj.auths))
      throw configError(path, `"auths" should be an object, found ${describeValue(obj.auths)}`);
    for (const [key, entry] of Object.entries(obj.auths)) {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
        throw configError(path, `"auths.${key}" should be an object, found ${describeValue(entry)}`);
      const e = entry as Record<string, unknown>;
      const out: DockerAuthEntry = {};
      for (const field of ['auth', 'username', 'password', 'identitytoken'] as const) {
        if (e[field] === undefined || e[field] === '') continue;
        // Never describe the value: it may be a secret.
        if (typeof e[field] !== 'string') throw configError(path, `"auths.${key}.${field}" should be a string, found ${typeof e[field]}`);
        out[field] = e[field] as string;
      }
      auths[key] = out;
    }
  }
  const credHelpers = stringMap(path, 'credHelpers', obj.credHelpers);
  if (obj.credsStore !== undefined && typeof obj.credsStore !== 'string')
    throw configError(path, `"credsStore" should be a string, found ${describeValue(obj.credsStore)}`);
  const credsStore = typeof obj.credsStore === 'string' && obj.credsStore !== '' ? obj.credsStore : undefined;
  for (const [key, helper] of Object.entries({ ...credHelpers, ...(credsStore ? { credsStore } : {}) })) {
    if (!HELPER_NAME.test(helper))
      throw configError(path, `credential helper ${JSON.stringify(helper)} (for ${key}) is not a plain name: expected letters, digits, ".", "_", "-"`);
  }
  return { path, found: true, auths, credHelpers, ...(credsStore ? { credsStore } : {}) };
}

/** The host[:port] a config key stands for: `https://ghcr.io/v2/` → `ghcr.io` (Docker's `ConvertToHostname`). */
export function configKeyHost(key: string): string {
  let host = key.replace(/^https?:\/\//i, '');
  host = host.split('/')[0] ?? host;
  host = host.toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}

/**
 * Where the Docker CLI would take credentials for `registry` (`host[:port]`, or `docker.io`) from:
 * a `credHelpers` entry, else `credsStore` (then `auths` only lists the registry), else the `auths`
 * entry; undefined when none applies.
 */
export function credentialSource(config: DockerConfig, registry: string): CredentialSource | undefined {
  const wanted = configKeyHost(registry);
  const authKey = Object.keys(config.auths).find((key) => configKeyHost(key) === wanted);
  const serverUrl = wanted === 'docker.io' ? DOCKER_HUB_KEY : wanted;
  const helperKey = Object.keys(config.credHelpers).find((key) => configKeyHost(key) === wanted);
  if (helperKey) return { kind: 'helper', helper: config.credHelpers[helperKey]!, serverUrl, via: 'credHelpers' };
  if (config.credsStore) return { kind: 'helper', helper: config.credsStore, serverUrl, via: 'credsStore' };
  if (authKey) return { kind: 'auths', key: authKey, entry: config.auths[authKey]! };
  return undefined;
}

function authError(registry: string, message: string, hint: string, cause?: unknown): LaunchError {
  return new LaunchError({ code: 'registry.credentials', stage: 'build', category: 'RegistryAuth', message, hint, cause, retryable: false });
}

function fromEntry(config: DockerConfig, registry: string, key: string, entry: DockerAuthEntry): RegistryCredentials | null {
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw configError(config.path, `"auths.${key}.auth" is not base64 of "username:password"`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  if (entry.identitytoken) {
    throw authError(
      registry,
      `Docker config ${config.path} holds an identity token for ${registry}, which is not supported`,
      `log in with a username and password or access token (docker login ${registry}), or pass credentials to the registry`,
    );
  }
  return null;
}

function findHelper(name: string, env: Env): string | undefined {
  const binary = `docker-credential-${name}`;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, binary);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Runs `docker-credential-<helper> get` with `serverUrl` on stdin, as the Docker CLI does. Resolves
 * null when the helper has no credentials for it ("credentials not found").
 */
export async function runCredentialHelper(
  helper: string,
  serverUrl: string,
  registry: string,
  options: { env?: Env; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<RegistryCredentials | null> {
  const env = options.env ?? process.env;
  const binary = findHelper(helper, env);
  const name = `docker-credential-${helper}`;
  if (!binary) {
    throw authError(registry, `credential helper ${name} (configured for ${registry}) is not on PATH`, `install ${name}, or remove it from the Docker config`);
  }
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(binary, ['get'], {
      env: env as NodeJS.ProcessEnv,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 30_000,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (out.length < 1 << 20) out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (err.length < 1 << 16) err += d;
    });
    child.on('error', (error) =>
      reject(
        authError(registry, `credential helper ${name} failed to run: ${error.message}`, `check that ${binary} works: echo ${serverUrl} | ${name} get`, error),
      ),
    );
    child.on('close', (exitCode, signal) => resolve({ code: signal ? -1 : exitCode, stdout: out, stderr: err }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(serverUrl);
  });
  if (code !== 0) {
    const said = (stdout.trim() || stderr.trim()).split('\n')[0]?.slice(0, 200) ?? '';
    if (/credentials not found/i.test(said)) return null;
    throw authError(
      registry,
      `credential helper ${name} failed for ${registry} (${code === -1 ? 'killed or timed out' : `exit code ${code}`})${said ? `: ${said}` : ''}`,
      `check that it works: echo ${serverUrl} | ${name} get`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw authError(
      registry,
      `credential helper ${name} printed something that is not JSON for ${registry}`,
      'it should print {"ServerURL":…,"Username":…,"Secret":…}',
    );
  }
  const p = parsed as Record<string, unknown>;
  if (typeof p !== 'object' || p === null || typeof p.Username !== 'string' || typeof p.Secret !== 'string') {
    throw authError(
      registry,
      `credential helper ${name} answered without a string "Username" and "Secret" for ${registry}`,
      'it should print {"ServerURL":…,"Username":…,"Secret":…}',
    );
  }
  if (p.Username === '<token>') {
    throw authError(
      registry,
      `credential helper ${name} returned an identity token for ${registry}, which is not supported`,
      `use a helper or login that yields a username and password or access token`,
    );
  }
  if (p.Secret === '') return null;
  return { username: p.Username, password: p.Secret };
}

/**
 * Credentials for `registry` from a Docker config, exactly where the Docker CLI would look (see
 * {@link credentialSource}); null when the config has none for it.
 */
export async function credentialsFromDockerConfig(
  config: DockerConfig,
  registry: string,
  options: { env?: Env; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<RegistryCredentials | null> {
  const source = credentialSource(config, registry);
  if (!source) return null;
  if (source.kind === 'auths') return fromEntry(config, registry, source.key, source.entry);
  return runCredentialHelper(source.helper, source.serverUrl, registry, options);
}
