import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Azurite's well-known development account (public, documented by Microsoft; not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface RunningAzurite {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  /** `http://127.0.0.1:<port>/devstoreaccount1` */
  serviceUrl: string;
  close(): Promise<void>;
}

/**
 * Starts `azurite-blob` (npm `azurite`, pinned 3.35.0 for Node 20) on 127.0.0.1 with a port the
 * kernel picks and a temporary data directory; resolves once it says where it listens (deadline
 * `timeoutMs`), and removes the directory on close.
 */
export async function startAzurite(timeoutMs = 60_000): Promise<RunningAzurite> {
  const require = createRequire(import.meta.url);
  const bin = join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'blob', 'main.js');
  const location = mkdtempSync(join(tmpdir(), 'azurite-'));
  const child: ChildProcess = spawn(
    process.execPath,
    [bin, '--blobHost', '127.0.0.1', '--blobPort', '0', '--location', location, '--skipApiVersionCheck', '--disableTelemetry'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const endpoint = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`azurite-blob did not start within ${timeoutMs} ms; output: ${output.slice(-2000)}`)), timeoutMs);
    let settled = false;
    const done = (error: Error | undefined, value?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout?.removeAllListeners('data');
      if (error) {
        child.kill('SIGKILL');
        reject(error);
      } else resolve(value!);
    };
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /listens on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (m) done(undefined, m[1]);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => done(new Error(`azurite-blob exited with ${code}: ${output.slice(-2000)}`)));
    child.once('error', (error) => done(error));
  });
  child.stdout!.resume();
  child.stderr!.resume();
  return {
    endpoint,
    serviceUrl: `${endpoint}/${AZURITE_ACCOUNT}`,
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(location, { recursive: true, force: true });
    },
  };
}

/** Creates `container` in the Azurite account (if missing), with the dev account's key. */
export async function createAzuriteContainer(serviceUrl: string, container: string): Promise<void> {
  const { BlobServiceClient, StorageSharedKeyCredential } = await import('@azure/storage-blob');
  await new BlobServiceClient(serviceUrl, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY)).getContainerClient(container).createIfNotExists();
}
