import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LaunchError, LaunchValidationError, silentLogger } from '@launch/core';
import { createAwsEnvironment, partitionOfArn } from './environment.js';
import { installLoopbackGuard } from '@launch/testkit';

const guard = installLoopbackGuard();
afterAll(() => {
  guard.restore();
  expect(guard.violations).toEqual([]);
});

describe('AWS environment: region', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aws-env-'));
  const config = join(dir, 'config');
  writeFileSync(config, '[default]\nregion = eu-west-1\n\n[profile ml]\n# a comment\nregion=ap-south-1\n[profile broken]\nregion = nowhere\n');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('takes options, then AWS_REGION, then AWS_DEFAULT_REGION, then the profile', () => {
    expect(createAwsEnvironment({ region: 'us-east-2', env: { AWS_REGION: 'eu-west-3' } })).toMatchObject({ region: 'us-east-2', regionSource: 'options' });
    expect(createAwsEnvironment({ env: { AWS_REGION: 'eu-west-3', AWS_DEFAULT_REGION: 'us-west-1' } })).toMatchObject({
      region: 'eu-west-3',
      regionSource: 'AWS_REGION',
    });
    expect(createAwsEnvironment({ env: { AWS_DEFAULT_REGION: 'us-west-1', AWS_CONFIG_FILE: config } })).toMatchObject({
      region: 'us-west-1',
      regionSource: 'AWS_DEFAULT_REGION',
    });
    expect(createAwsEnvironment({ env: { AWS_CONFIG_FILE: config } })).toMatchObject({ region: 'eu-west-1', regionSource: 'profile default' });
    expect(createAwsEnvironment({ env: { AWS_CONFIG_FILE: config, AWS_PROFILE: 'ml' } })).toMatchObject({
      region: 'ap-south-1',
      regionSource: 'profile ml',
      profile: 'ml',
    });
    expect(createAwsEnvironment({ profile: 'ml', env: { AWS_CONFIG_FILE: config } }).region).toBe('ap-south-1');
  });

  it('refuses a bad or missing region naming where it was found', () => {
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(LaunchValidationError);
        return (e as Error).message;
      }
      throw new Error('expected a refusal');
    };
    expect(err(() => createAwsEnvironment({ region: 'useast1' }))).toContain('region');
    expect(err(() => createAwsEnvironment({ env: { AWS_REGION: 'Moon Base' } }))).toContain(
      'AWS_REGION is "Moon Base": expected an AWS region such as us-east-1',
    );
    expect(err(() => createAwsEnvironment({ profile: 'broken', env: { AWS_CONFIG_FILE: config } }))).toContain(
      `region in profile "broken" of ${config} (it holds "nowhere", not a region)`,
    );
    expect(err(() => createAwsEnvironment({ endpoint: 'x' } as never))).toContain('unknown key "endpoint" (did you mean "endpoints"?)');
  });

  it('reads the partition from an ARN', () => {
    expect(partitionOfArn('arn:aws-us-gov:iam::123456789012:user/x')).toBe('aws-us-gov');
    expect(partitionOfArn('nonsense')).toBeUndefined();
  });
});

describe('AWS environment: no credentials anywhere', () => {
  it('verify names the whole chain that was tried, and stays on loopback', async () => {
    const saved = { ...process.env };
    const dir = mkdtempSync(join(tmpdir(), 'aws-nocreds-'));
    for (const name of Object.keys(process.env)) if (name.startsWith('AWS_')) delete process.env[name];
    Object.assign(process.env, {
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'),
      AWS_CONFIG_FILE: join(dir, 'config'),
      AWS_EC2_METADATA_DISABLED: 'true',
      HOME: dir,
    });
    try {
      const env = createAwsEnvironment({ region: 'us-east-1', endpoints: { sts: 'http://127.0.0.1:9' } });
      let error: unknown;
      try {
        await env.verify({ logger: silentLogger });
      } catch (e) {
        error = e;
      }
      expect(LaunchError.isInstance(error)).toBe(true);
      const e = error as LaunchError;
      expect(e.code).toBe('aws.no_credentials');
      expect(e.message).toContain(
        'no AWS credentials found; the default credential chain tried environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)',
      );
      expect(e.message).toContain('web identity token (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN: IRSA)');
      expect(e.message).toContain('EC2 instance metadata (IMDS)');
      expect(e.hint).toContain('IRSA');
    } finally {
      for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
      Object.assign(process.env, saved);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
