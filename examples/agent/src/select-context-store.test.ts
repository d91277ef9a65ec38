import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAgentConfig, silentLogger } from '@launch/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contextStorePlan, createContextStore, describeContextStore } from './select-context-store.js';
import { createEnvironmentLoader } from './select-environment.js';

const config = (raw: Record<string, unknown>) => parseAgentConfig(raw, 'test config');

describe('the kaniko context store', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctx-store-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('describes each kind without loading anything', () => {
    expect(describeContextStore(undefined)).toBe('context store: none (no builder.build-context-store and no WANDB_LAUNCH_KANIKO_PVC_NAME)');
    const plan = contextStorePlan(config({ builder: { type: 'kaniko', 'build-context-store': 'gs://b/p' } }), {});
    expect(describeContextStore(plan)).toBe(
      'context store: gs://b/p (Google Cloud Storage, from builder.build-context-store); credentials from Application Default Credentials',
    );
  });

  it('makes the S3 store with the shared AWS environment, the GCS and Azure stores from their packages', async () => {
    const c = config({ environment: { type: 'aws', region: 'us-east-1' }, builder: { type: 'kaniko', 'build-context-store': 's3://bucket/ctx' } });
    const env = { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' };
    const s3 = await createContextStore(contextStorePlan(c, env)!, createEnvironmentLoader(c, env));
    expect(s3).toMatchObject({ name: 's3', bucket: 'bucket', prefix: 'ctx', region: 'us-east-1' });
    const g = config({ environment: { type: 'gcp', region: 'us-central1' }, builder: { type: 'kaniko', 'build-context-store': 'gs://gbucket/ctx' } });
    expect((await createContextStore(contextStorePlan(g, {})!, createEnvironmentLoader(g, {}))).name).toBe('gcs');
    const a = config({ environment: { type: 'azure' }, builder: { type: 'kaniko', 'build-context-store': 'https://acct.blob.core.windows.net/contexts' } });
    expect((await createContextStore(contextStorePlan(a, {})!, createEnvironmentLoader(a, {}))).name).toBe('azure-blob');
  });

  it('copies to the PVC mount path and answers the path build pods read', async () => {
    const env = { WANDB_LAUNCH_KANIKO_PVC_NAME: 'kaniko-pvc', WANDB_LAUNCH_KANIKO_PVC_MOUNT_PATH: join(dir, 'mnt') };
    const c = parseAgentConfig({ builder: { type: 'kaniko' } }, 'test config', { env });
    const store = await createContextStore(contextStorePlan(c, env)!, createEnvironmentLoader(c, env));
    const file = join(dir, 'ctx.tgz');
    await writeFile(file, 'context-bytes');
    expect(await store.upload(file, 'run1.tgz', { logger: silentLogger })).toEqual({ uri: 'tar:///context/run1.tgz' });
    expect(await readFile(join(dir, 'mnt', 'run1.tgz'), 'utf8')).toBe('context-bytes');
  });

  it('turns a store the cloud package refuses into a config error naming the key', async () => {
    // Core's schema accepts this URI shape; the S3 package refuses the bucket name.
    const c = config({ environment: { type: 'aws', region: 'us-east-1' }, builder: { type: 'kaniko', 'build-context-store': 's3://Bad_Bucket/x' } });
    await expect(createContextStore(contextStorePlan(c, {})!, createEnvironmentLoader(c, {}))).rejects.toMatchObject({
      code: 'config.context_store',
      message: expect.stringMatching(/^builder.build-context-store "s3:\/\/Bad_Bucket\/x" cannot be used: /),
    });
  });
});
