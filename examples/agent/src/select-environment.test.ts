import { parseAgentConfig } from '@launch/core';
import { describe, expect, it } from 'vitest';
import { awsEndpoints, configuredCloud, createEnvironmentLoader, describeEnvironment } from './select-environment.js';

const config = (raw: Record<string, unknown>) => parseAgentConfig(raw, 'test config');

describe('the cloud environment', () => {
  it('is the cloud of environment.type; local and no block are none', () => {
    expect(configuredCloud(config({ environment: { type: 'aws', region: 'us-east-1' } }))).toBe('aws');
    expect(configuredCloud(config({ environment: { type: 'azure' } }))).toBe('azure');
    expect(configuredCloud(config({ environment: { type: 'local' } }))).toBeUndefined();
    expect(configuredCloud(config({}))).toBeUndefined();
    expect(describeEnvironment(config({ environment: { type: 'local' } }))).toBe(
      'environment: none (environment.type: local): no cloud credentials are loaded',
    );
    expect(describeEnvironment(config({ environment: { type: 'gcp', region: 'us-central1' } }))).toBe(
      'environment: gcp (Google Cloud, region us-central1, from environment.type); credentials from Application Default Credentials',
    );
  });

  it('takes AWS endpoints from the SDK variables, the service one before AWS_ENDPOINT_URL', () => {
    expect(awsEndpoints({ AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:2' })).toEqual({ s3: 'http://127.0.0.1:2' });
    expect(awsEndpoints({ AWS_ENDPOINT_URL: 'http://127.0.0.1:1', AWS_ENDPOINT_URL_ECR: 'http://127.0.0.1:3' })).toEqual({
      s3: 'http://127.0.0.1:1',
      ecr: 'http://127.0.0.1:3',
      sts: 'http://127.0.0.1:1',
    });
    expect(awsEndpoints({ AWS_ENDPOINT_URL_S3: '' })).toEqual({});
  });

  it('makes each environment once, with environment.region for the configured cloud and the hint for another', async () => {
    const loader = createEnvironmentLoader(config({ environment: { type: 'aws', region: 'eu-west-1' } }), { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' });
    const aws = await loader.get('aws', { region: 'us-east-2' });
    expect(aws.region).toBe('eu-west-1');
    expect(aws.clientConfig('s3').endpoint).toBe('http://127.0.0.1:9');
    expect(aws.clientConfig('ecr').endpoint).toBeUndefined();
    expect(await loader.get('aws')).toBe(aws);
    const gcp = await loader.get('gcp', { region: 'us-central1' });
    expect(gcp.region).toBe('us-central1');
  });

  it('names a missing region of a cloud the config does not configure as the cloud package does', async () => {
    const loader = createEnvironmentLoader(config({}), {});
    await expect(loader.get('gcp')).rejects.toThrow(/no region: set environment.region in the config, or GOOGLE_CLOUD_REGION/);
  });
});
