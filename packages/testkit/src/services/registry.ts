import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findBinary, startDaemon, untilReady, type Daemon } from './daemon.js';

const run = promisify(execFile);

/** How the registry authenticates clients. */
export type RegistryAuth =
  | { kind: 'none' }
  | { kind: 'htpasswd'; username: string; password: string }
  | { kind: 'token'; realm: string; service: string; issuer: string; certificatePath: string };

export interface TestRegistry {
  /** `127.0.0.1:PORT`, as an image reference names it. */
  address: string;
  daemon: Daemon;
  stop(): Promise<void>;
}

/** Why a Distribution registry (with `auth`) cannot run here, or undefined when it can. */
export function registryUnavailableReason(auth: RegistryAuth['kind']): string | undefined {
  if (!findBinary('docker-registry')) return 'docker-registry is not installed (apt-get install docker-registry)';
  if (auth === 'htpasswd' && !findBinary('htpasswd')) return 'htpasswd is not installed (apt-get install apache2-utils)';
  if (auth === 'token' && !findBinary('openssl')) return 'openssl is not installed (apt-get install openssl)';
  return undefined;
}

function yamlString(value: string): string {
  return JSON.stringify(value);
}

/**
 * Starts `docker-registry serve` (Distribution 2.8) on 127.0.0.1 with a port the kernel picks (read
 * back from its "listening on" log line, so no port race), filesystem storage under `dir`, deletes
 * enabled, and the given auth; waits until `GET /v2/` answers 200 (no auth) or 401.
 */
export async function startRegistry(name: string, dir: string, logDir: string, auth: RegistryAuth, timeoutMs = 30_000): Promise<TestRegistry> {
  const binary = findBinary('docker-registry');
  if (!binary) throw new Error('docker-registry is not installed');
  mkdirSync(join(dir, 'data'), { recursive: true });
  let authBlock = '';
  if (auth.kind === 'htpasswd') {
    const htpasswd = findBinary('htpasswd');
    if (!htpasswd) throw new Error('htpasswd is not installed');
    // bcrypt, the only hash Distribution accepts.
    const { stdout } = await run(htpasswd, ['-Bbn', auth.username, auth.password]);
    const file = join(dir, 'htpasswd');
    writeFileSync(file, `${stdout.trim()}\n`, { mode: 0o600 });
    authBlock = `auth:\n  htpasswd:\n    realm: ${yamlString(name)}\n    path: ${yamlString(file)}\n`;
  } else if (auth.kind === 'token') {
    authBlock =
      `auth:\n  token:\n    realm: ${yamlString(auth.realm)}\n    service: ${yamlString(auth.service)}\n` +
      `    issuer: ${yamlString(auth.issuer)}\n    rootcertbundle: ${yamlString(auth.certificatePath)}\n`;
  }
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: info',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${yamlString(join(dir, 'data'))}`,
      '  delete:',
      '    enabled: true',
      'http:',
      '  addr: 127.0.0.1:0',
      `  secret: ${yamlString(randomBytes(16).toString('hex'))}`,
      authBlock,
    ].join('\n'),
  );
  const daemon = startDaemon(`docker-registry (${name})`, binary, ['serve', config], join(logDir, `registry-${name}.log`));
  const expected = auth.kind === 'none' ? 200 : 401;
  try {
    const address = await untilReady(
      daemon,
      `"listening on" line and ${expected} from GET /v2/`,
      async () => {
        const match = /listening on (127\.0\.0\.1:\d+)/.exec(readFileSync(daemon.logFile, 'utf8'));
        if (!match) return undefined;
        const res = await fetch(`http://${match[1]}/v2/`, { signal: AbortSignal.timeout(2_000) });
        await res.arrayBuffer();
        if (res.status !== expected) throw new Error(`GET /v2/ answered ${res.status}, expected ${expected}`);
        return match[1];
      },
      timeoutMs,
    );
    return { address, daemon, stop: () => daemon.stop(10_000) };
  } catch (error) {
    await daemon.stop(5_000);
    throw error;
  }
}
