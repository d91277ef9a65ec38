import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createBuildStandIn,
  dockerService,
  KANIKO_IMAGE_PATTERN,
  registryServices,
  serviceAvailable,
  startKubeTestServer,
  type KubeTestServer,
  type StandInBuild,
} from '@launch/testkit';
import { S3RVER_CREDENTIALS, startS3rver, type RunningS3rver } from '../../../packages/cloud-aws/src/test-support/s3rver.js';
import { assertBuilt, cli, sandbox, status } from './helpers.js';

/**
 * `builder.type: kaniko` through the binary: the context of `enqueue --context DIR` is uploaded to an
 * S3 store (s3rver, reached through AWS_ENDPOINT_URL_S3 as a user reaches a VPC endpoint), the build
 * Job runs in the Kubernetes test server where the build stand-in fetches that object, builds it on
 * the real Docker engine and pushes to the real Distribution registry; the job then runs as a
 * Kubernetes Job from the pushed image.
 */
const docker = dockerService();
const reg = registryServices();
const BUCKET = 'launch-contexts';

/** Every object file s3rver holds under the bucket (it stores each object as `<key>._S3rver_object`). */
async function objects(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (entry.isFile() && entry.name.endsWith('._S3rver_object')) out.push(entry.name);
  }
  return out;
}

describe.runIf(serviceAvailable('the test Docker engine and registries', !!docker && !!reg))('launch-agent with builder.type kaniko', () => {
  let kube: KubeTestServer;
  let s3: RunningS3rver;
  const builds: StandInBuild[] = [];
  /** The bucket's objects while each build ran (the uploaded context must be there). */
  const objectsDuringBuild: Promise<string[]>[] = [];
  const runImages: string[] = [];
  const repository = `e2e/kaniko-${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    assertBuilt();
    s3 = await startS3rver([BUCKET]);
    kube = await startKubeTestServer({ namespaces: ['default', 'wandb'], kubelet: { stepDelayMs: 5 } });
    const standIn = createBuildStandIn({
      socketPath: docker!.socketPath,
      s3: { endpoint: s3.endpoint, credentials: { ...S3RVER_CREDENTIALS } },
      onBuild: (b) => {
        builds.push(b);
        objectsDuringBuild.push(objects(join(s3.directory, BUCKET)));
      },
    });
    kube.kubelet.script({ image: KANIKO_IMAGE_PATTERN }, [{ pending: 'ContainerCreating' }, { running: true }, { execute: standIn }]);
    // The run's pod: scripted, it records the image it was started from and succeeds.
    kube.kubelet.script({ image: new RegExp(`^${reg!.plain.replace(/\./g, '\\.')}/${repository}:`) }, [
      { pending: 'ContainerCreating' },
      { running: true },
      {
        execute: async (pod) => {
          runImages.push(String((pod as { spec: { containers: { image: string }[] } }).spec.containers[0]!.image));
          return { exitCode: 0 };
        },
      },
    ]);
  });
  afterAll(async () => {
    await kube?.close();
    await s3?.close();
  });

  it('uploads the context to S3, builds it in a Job, pushes, runs the pushed image, deletes the context; the second job skips the build', async () => {
    const b = await sandbox({
      KUBECONFIG: kube.kubeconfigPath,
      LAUNCH_AGENT_NAME: 'kaniko-e2e',
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      // No Docker engine for the agent: kaniko needs none.
      DOCKER_HOST: `unix://${join('/nonexistent', 'docker.sock')}`,
    });
    const code = join(b.dir, 'code');
    await mkdir(code, { recursive: true });
    await writeFile(join(code, 'Dockerfile'), 'FROM localhost/busybox:test\nCOPY run.sh /run.sh\nENTRYPOINT ["sh", "/run.sh"]\n');
    await writeFile(join(code, 'run.sh'), 'echo built-by-kaniko\n');
    const spec = join(b.dir, 'spec.yaml');
    await writeFile(spec, 'resource: kubernetes\n');
    const cfg = join(b.dir, 'launch-config.yaml');
    await writeFile(
      cfg,
      ['builder:', '  type: kaniko', `  destination: ${reg!.plain}/${repository}`, `  build-context-store: s3://${BUCKET}/contexts`, ''].join('\n'),
    );

    const check = await cli(['config', 'check', '-c', cfg], b.env);
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout + check.stderr).toContain(`context store: s3://${BUCKET}/contexts (Amazon S3, from builder.build-context-store)`);
    expect(check.stdout + check.stderr).toContain('builder: kaniko (builder.type)');

    const enqueue = async () => {
      const r = await cli(['enqueue', '--spec', spec, '--context', code], b.env);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.trim();
    };
    const first = await enqueue();
    const r1 = await cli(['run', '-c', cfg, '--exit-when-idle'], b.env, 180_000);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.stderr).toContain('launch: builder kaniko (builder.type: kaniko)');
    const built = new RegExp(`\\[${first}\\] image (${reg!.plain.replace(/\./g, '\\.')}/${repository}:[0-9a-f]+) built`).exec(r1.stderr);
    expect(built, r1.stderr).not.toBeNull();
    const image = built![1]!;
    expect(builds).toHaveLength(1);
    expect(builds[0]!.context).toMatch(new RegExp(`^s3://${BUCKET}/contexts/.+\\.tgz$`));
    expect(builds[0]!.destinations).toContain(image);
    const tags = (await (await fetch(`http://${reg!.plain}/v2/${repository}/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toEqual([image.split(':').pop()]);
    expect(runImages).toEqual([image]);
    // The uploaded context was in the bucket during the build, and is gone now, as is the build Job.
    expect(await objectsDuringBuild[0]).toHaveLength(1);
    expect(await objects(join(s3.directory, BUCKET))).toEqual([]);
    expect(kube.listObjects('/apis/batch/v1/namespaces/wandb/jobs')).toEqual([]);

    const second = await enqueue();
    const r2 = await cli(['run', '-c', cfg, '--exit-when-idle'], b.env, 180_000);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toContain(`[${second}] image ${image} (cached)`);
    expect(builds).toHaveLength(1);
    expect(runImages).toEqual([image, image]);
    const s = await status(b.env);
    for (const id of [first, second]) expect(s.items.find((i) => i.id === id)).toMatchObject({ state: 'finished' });
  });

  it('refuses kaniko at start-up (exit 2) when there is no kube config', async () => {
    const b = await sandbox({ DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    const cfg = join(b.dir, 'launch-config.yaml');
    await writeFile(
      cfg,
      ['builder:', '  type: kaniko', `  destination: ${reg!.plain}/${repository}`, `  build-context-store: s3://${BUCKET}/contexts`, ''].join('\n'),
    );
    const r = await cli(['run', '-c', cfg, '--exit-when-idle'], b.env);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('builder.type is kaniko, but there is no Kubernetes cluster to run build Jobs in');
  });
});
