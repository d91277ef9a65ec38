import { describe, expect, it } from 'vitest';
import { LaunchValidationError } from '@launch/core';
import { parseEcrUri } from './ecr-uri.js';
import { createEcrRegistry, ecrOptionsFromWandbConfig } from './ecr-registry.js';
import { createAwsEnvironment } from './environment.js';

const env = createAwsEnvironment({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });

function refusal(fn: () => unknown): LaunchValidationError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(LaunchValidationError);
    return error as LaunchValidationError;
  }
  throw new Error('expected a refusal');
}

describe('ECR URIs (W&B rule, then validated)', () => {
  it('parses account, region, repository and tag', () => {
    expect(parseEcrUri('123456789012.dkr.ecr.eu-west-2.amazonaws.com/team/launch')).toEqual({
      account: '123456789012',
      region: 'eu-west-2',
      repository: 'team/launch',
      host: '123456789012.dkr.ecr.eu-west-2.amazonaws.com',
      uri: '123456789012.dkr.ecr.eu-west-2.amazonaws.com/team/launch',
      tag: '',
    });
    expect(parseEcrUri('https://123456789012.dkr.ecr.us-east-1.amazonaws.com/launch:v1').tag).toBe('v1');
  });

  it('names what is wrong with each part', () => {
    expect(refusal(() => parseEcrUri('123456789012.ecr.us-east-1.amazonaws.com/launch')).message).toContain('lacks "dkr."');
    expect(refusal(() => parseEcrUri('acct.dkr.ecr.us-east-1.amazonaws.com/launch')).message).toContain('account "acct" is not a 12-digit AWS account id');
    expect(refusal(() => parseEcrUri('123456789012.dkr.ecr.moon.amazonaws.com/launch')).message).toContain('region "moon" is not an AWS region');
    expect(refusal(() => parseEcrUri('123456789012.dkr.ecr.us-east-1.amazonaws.com/Launch')).message).toContain(
      'repository "Launch" is not an ECR repository name',
    );
    expect(refusal(() => parseEcrUri('ghcr.io/acme/launch')).message).toContain(
      'expected [https://]<account>.dkr.ecr.<region>.amazonaws.com/<repository>, found "ghcr.io/acme/launch"',
    );
  });

  it('the registry refuses a destination with a tag, and uri together with the parts', () => {
    expect(refusal(() => createEcrRegistry({ uri: '123456789012.dkr.ecr.us-east-1.amazonaws.com/launch:v1', environment: env })).message).toContain(
      'names a tag ("v1")',
    );
    expect(
      refusal(() => createEcrRegistry({ uri: '123456789012.dkr.ecr.us-east-1.amazonaws.com/launch', repository: 'x', environment: env })).message,
    ).toContain('not both');
    expect(refusal(() => createEcrRegistry({ accountId: '123456789012', environment: env })).issues.map((i) => i.path)).toEqual(['region', 'repository']);
  });

  it("fixes W&B's repo_name bug: repository and repo_name both work in the registry block", () => {
    for (const key of ['repository', 'repo_name'] as const) {
      const registry = createEcrRegistry(ecrOptionsFromWandbConfig({ type: 'ecr', account_id: '123456789012', region: 'us-west-2', [key]: 'launch' }, env));
      expect(registry.uri).toBe('123456789012.dkr.ecr.us-west-2.amazonaws.com/launch');
      expect(registry.region).toBe('us-west-2');
      expect(registry.kanikoEnv).toEqual({ AWS_REGION: 'us-west-2' });
      expect(registry.needsPullSecret).toBe(true);
    }
    expect(
      refusal(() => ecrOptionsFromWandbConfig({ account_id: '123456789012', region: 'us-west-2', repository: 'a', repo_name: 'b' }, env)).message,
    ).toContain('disagree');
  });
});
