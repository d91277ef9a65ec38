import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

/**
 * s3rver's built-in account. s3rver refuses any other access key id (`InvalidAccessKeyId`, 403); it
 * does not check SigV4 signatures, so a wrong secret with this key id is accepted.
 */
export const S3RVER_CREDENTIALS: { readonly accessKeyId: string; readonly secretAccessKey: string } = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface RunningS3rver {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  directory: string;
  close(): Promise<void>;
}

/**
 * Starts s3rver (a Koa S3 emulator that checks SigV4 signatures against its `S3RVER` key) on
 * 127.0.0.1, on a free port, with its files in a new temp dir, and the given buckets created.
 */
export async function startS3rver(buckets: string[]): Promise<RunningS3rver> {
  const directory = mkdtempSync(join(tmpdir(), 's3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: buckets.map((name) => ({ name })) });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    directory,
    async close() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
