import { LaunchValidationError } from '@launch/core';
import { describeValue } from '@launch/core/internal';
import { AWS_REGION_PATTERN } from './environment.js';

/** W&B's ECR regex (`wandb/sdk/launch/utils.py` `AWS_ECR_REGEX`), matched from the start as `re.match` does. */
export const WANDB_ECR_PATTERN = /^(?:https:\/\/)?(?<account>[\w-]+)\.dkr\.ecr\.(?<region>[\w-]+)\.amazonaws\.com\/(?<repository>[./\w-]+):?(?<tag>.*)$/;

/** ECR's repository-name rule (`CreateRepository`): lower-case path components joined by `/`, 2–256 characters. */
const REPOSITORY = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

/** An ECR repository: `<account>.dkr.ecr.<region>.amazonaws.com/<repository>`. */
export interface EcrRepository {
  account: string;
  region: string;
  repository: string;
  /** `<account>.dkr.ecr.<region>.amazonaws.com` */
  host: string;
  /** `<host>/<repository>` */
  uri: string;
  /** The tag, when the URI had one (`…/<repository>:<tag>`); empty otherwise. */
  tag: string;
}

function bad(path: string, found: unknown, message: string): LaunchValidationError {
  return new LaunchValidationError({
    code: 'registry.invalid_uri',
    stage: 'agent',
    subject: 'ECR registry',
    issues: [{ path, expected: '<account>.dkr.ecr.<region>.amazonaws.com/<repository>', found: describeValue(found, 120), message }],
  });
}

/** Checks the three parts and builds the repository. */
export function ecrRepository(parts: { account: string; region: string; repository: string; tag?: string }, path = 'uri'): EcrRepository {
  const { account, region, repository } = parts;
  if (!/^\d{12}$/.test(account)) throw bad(path, account, `account ${describeValue(account)} is not a 12-digit AWS account id`);
  if (!AWS_REGION_PATTERN.test(region)) throw bad(path, region, `region ${describeValue(region)} is not an AWS region such as us-east-1`);
  if (repository.length < 2 || repository.length > 256 || !REPOSITORY.test(repository)) {
    throw bad(
      path,
      repository,
      `repository ${describeValue(repository)} is not an ECR repository name (lower-case letters, digits and . _ - / separators, 2–256 characters)`,
    );
  }
  const host = `${account}.dkr.ecr.${region}.amazonaws.com`;
  return { account, region, repository, host, uri: `${host}/${repository}`, tag: parts.tag ?? '' };
}

/**
 * Parses an ECR URI by W&B's rule (`[https://]<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:<tag>]`)
 * and then validates each part, naming what was found. The seed guide's `<account-id>.ecr.<region>.amazonaws.com`
 * (without `dkr.`) is refused with a hint, as W&B's regex refuses it too.
 */
export function parseEcrUri(uri: string, path = 'uri'): EcrRepository {
  if (typeof uri !== 'string' || uri === '')
    throw bad(path, uri, `expected <account>.dkr.ecr.<region>.amazonaws.com/<repository>, found ${describeValue(uri)}`);
  const match = WANDB_ECR_PATTERN.exec(uri);
  if (!match?.groups) {
    const missingDkr = /^(?:https:\/\/)?[\w-]+\.ecr\.[\w-]+\.amazonaws\.com\//.test(uri);
    throw bad(
      path,
      uri,
      missingDkr
        ? `${describeValue(uri, 120)} lacks "dkr.": ECR hosts are <account>.dkr.ecr.<region>.amazonaws.com`
        : `expected [https://]<account>.dkr.ecr.<region>.amazonaws.com/<repository>, found ${describeValue(uri, 120)}`,
    );
  }
  const { account = '', region = '', repository = '', tag = '' } = match.groups;
  if (tag.includes('/') || tag.includes(':')) throw bad(path, uri, `tag ${describeValue(tag)} is not an image tag`);
  return ecrRepository({ account, region, repository, tag }, path);
}
