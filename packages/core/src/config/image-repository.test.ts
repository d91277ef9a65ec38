import { describe, expect, it } from 'vitest';
import { checkImageRepository, isBuildContextStoreUri } from './image-repository.js';

describe('checkImageRepository', () => {
  it.each([
    ['https://us-central1-docker.pkg.dev/my-project/my-repo/my-image', 'us-central1-docker.pkg.dev/my-project/my-repo/my-image', 'gcr'],
    ['123456789012.dkr.ecr.us-east-1.amazonaws.com/team/launch', '123456789012.dkr.ecr.us-east-1.amazonaws.com/team/launch', 'ecr'],
    ['https://myreg.azurecr.io/launch', 'myreg.azurecr.io/launch', 'acr'],
    // W&B's regex reads "/sub" after an ACR repository as a tag; nested repositories are valid.
    ['myreg.azurecr.io/team/launch', 'myreg.azurecr.io/team/launch', 'acr'],
    ['localhost:5000/launch', 'localhost:5000/launch', 'other'],
    ['registry.example.com/team/image/', 'registry.example.com/team/image', 'other'],
    ['team/image', 'team/image', 'other'],
  ])('accepts %s', (input, uri, kind) => {
    const checked = checkImageRepository(input);
    expect(checked).toMatchObject({ ok: true, value: { uri, kind } });
  });

  it.each([
    ['us-central1-docker.pkg.dev/p/r/img:latest', 'without a tag', '":latest"'],
    ['myreg.azurecr.io/launch:v1', 'without a tag', '":v1"'],
    ['localhost:5000/launch:dev', 'without a tag', '":dev"'],
    ['registry.example.com/image@sha256:abcd', 'without a digest', ''],
    ['us-central1-docker.pkg.dev/my-project/my-repo', 'with an image name', '<image>'],
    ['myreg.azurecr.io', 'with a repository', '<registry>.azurecr.io/<repository>'],
    ['https://myreg.azurecr.io/', 'with a repository', '<repository>'],
    ['123456789012.dkr.ecr.us-east-1.amazonaws.com', 'with a repository', '<account-id>'],
    ['registry.example.com', 'below the registry host', 'registry.example.com/<repository>'],
    ['http://registry.example.com/image', 'without a scheme', 'https://'],
    ['registry.example.com/Team/Image', 'lowercase', '"Team"'],
    ['registry.example.com//image', 'lowercase', 'component ""'],
    ['registry.example.com/my image', 'without whitespace', ''],
    ['', 'such as', ''],
  ])('refuses %s', (input, phrase, detail) => {
    const checked = checkImageRepository(input);
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.expected).toContain(phrase);
    expect(checked.expected).toContain(detail);
  });
});

describe('isBuildContextStoreUri', () => {
  it.each([
    's3://bucket',
    's3://bucket/prefix/dir',
    'gs://bucket/ctx',
    'https://acct.blob.core.windows.net/container/ctx',
    'https://acct.blob.core.windows.net/container',
  ])('accepts %s', (uri) => expect(isBuildContextStoreUri(uri)).toBe(true));
  it.each(['s3://', 'gs:///x', 'ftp://bucket/x', 'https://example.com/container', 'https://acct.blob.core.windows.net/', '/local/dir', 's3://bucket name'])(
    'refuses %s',
    (uri) => expect(isBuildContextStoreUri(uri)).toBe(false),
  );
});
