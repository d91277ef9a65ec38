import { describe, expect, it } from 'vitest';
import { KANIKO_IMAGE_PATTERN, parseExecutorArgs } from './build-stand-in.js';

describe('kaniko build stand-in', () => {
  it('reads the executor flags in both forms, repeated destinations and build args', () => {
    expect(
      parseExecutorArgs([
        '--context=s3://b/k.tgz',
        '-f',
        'Dockerfile.wandb',
        '--destination=r/a:1',
        '-d',
        'r/a:latest',
        '--build-arg=A=x=y',
        '--build-arg',
        'B=2',
        '--cache=true',
      ]),
    ).toEqual({
      context: 's3://b/k.tgz',
      dockerfile: 'Dockerfile.wandb',
      destinations: ['r/a:1', 'r/a:latest'],
      buildArgs: { A: 'x=y', B: '2' },
      noPush: false,
    });
    expect(parseExecutorArgs(['--no-push'])).toMatchObject({ context: 'dir:///workspace/', dockerfile: 'Dockerfile', destinations: [], noPush: true });
  });

  it('recognises kaniko executor images only', () => {
    for (const image of ['gcr.io/kaniko-project/executor', 'gcr.io/kaniko-project/executor:v1.11.0', 'gcr.io/kaniko-project/executor@sha256:abc'])
      expect(KANIKO_IMAGE_PATTERN.test(image)).toBe(true);
    for (const image of ['gcr.io/kaniko-project/warmer:v1', 'busybox', 'evil/gcr.io/kaniko-project/executor'])
      expect(KANIKO_IMAGE_PATTERN.test(image)).toBe(false);
  });
});
