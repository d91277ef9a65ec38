import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerService, serviceAvailable } from '@launch/testkit';
import { motoInstalled, startMoto, type RunningMoto } from '../../../packages/cloud-aws/src/test-support/moto.js';
import { assertBuilt, CLI, cli, sandbox, status, type Result } from './helpers.js';

beforeAll(() => assertBuilt());

/** Runs the binary with an ESM resolve hook that writes every module URL it loads to a file; returns those URLs. */
async function loadedModules(args: string[], env: Record<string, string>, dir: string): Promise<{ result: Result; urls: string[] }> {
  const hooks = join(dir, 'trace-hooks.mjs');
  const register = join(dir, 'trace-register.mjs');
  const trace = join(dir, 'trace.txt');
  await writeFile(
    hooks,
    "import { appendFileSync } from 'node:fs';\nexport async function resolve(specifier, context, next) {\n  const r = await next(specifier, context);\n  appendFileSync(process.env.LAUNCH_TRACE_FILE, r.url + '\\n');\n  return r;\n}\n",
  );
  await writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  await writeFile(trace, '');
  const child = spawn(process.execPath, ['--import', pathToFileURL(register).href, CLI, ...args], {
    env: { ...env, LAUNCH_TRACE_FILE: trace },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const result = await new Promise<Result>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  clearTimeout(timer);
  return { result, urls: (await readFile(trace, 'utf8')).split('\n').filter(Boolean) };
}

const CLOUD_MODULE = /[\\/](?:cloud-aws|cloud-gcp|cloud-azure)[\\/]|@aws-sdk|@google-cloud|google-auth-library|@azure[\\/+]/;

describe('cloud packages are loaded only when configured', () => {
  it('an agent with no cloud configured loads no cloud package or SDK; an ECR destination loads the AWS package', async () => {
    const b = await sandbox({ DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    const none = await loadedModules(['run', '--exit-when-idle'], b.env, b.dir);
    expect(none.result.code, none.result.stderr).toBe(0);
    // The trace works: it saw the agent's own modules.
    expect(none.urls.some((u) => u.includes('/builders/'))).toBe(true);
    expect(none.urls.filter((u) => CLOUD_MODULE.test(u))).toEqual([]);

    const cfg = join(b.dir, 'ecr.yaml');
    await writeFile(
      cfg,
      'environment:\n  type: aws\n  region: us-east-1\nbuilder:\n  type: docker\n  destination: 123456789012.dkr.ecr.us-east-1.amazonaws.com/launch\n',
    );
    const ecr = await loadedModules(['run', '-c', cfg, '--exit-when-idle'], b.env, b.dir);
    expect(ecr.result.code, ecr.result.stderr).toBe(0);
    expect(ecr.result.stderr).toContain('launch: registry: 123456789012.dkr.ecr.us-east-1.amazonaws.com/launch (Amazon ECR (ecr), from builder.destination)');
    expect(ecr.urls.some((u) => /[\\/]cloud-aws[\\/]/.test(u))).toBe(true);
    expect(ecr.urls.filter((u) => /[\\/](?:cloud-gcp|cloud-azure)[\\/]/.test(u))).toEqual([]);
  });
});

describe("config check for the set-up guide's three clouds with kaniko", () => {
  it('names the environment, builder, registry and context store of each, with nothing ignored', async () => {
    const b = await sandbox({ DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    const kubeconfig = join(b.dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
    );
    const env = { ...b.env, KUBECONFIG: kubeconfig };
    const examples: [string, string, string[]][] = [
      [
        'aws',
        'environment:\n  type: aws\n  region: us-east-1\nbuilder:\n  type: kaniko\n  destination: 123456789012.dkr.ecr.us-east-1.amazonaws.com/launch\n  build-context-store: s3://my-bucket/contexts\n',
        ['environment: aws (AWS, region us-east-1', '(Amazon ECR (ecr), from builder.destination)', 'context store: s3://my-bucket/contexts (Amazon S3'],
      ],
      [
        'gcp',
        'environment:\n  type: gcp\n  region: us-central1\nbuilder:\n  type: kaniko\n  destination: us-central1-docker.pkg.dev/my-project/launch/img\n  build-context-store: gs://my-bucket/contexts\n',
        [
          'environment: gcp (Google Cloud, region us-central1',
          '(Google Artifact Registry (gar), from builder.destination)',
          'context store: gs://my-bucket/contexts (Google Cloud Storage',
        ],
      ],
      [
        'azure',
        'environment:\n  type: azure\nbuilder:\n  type: kaniko\n  destination: myacr.azurecr.io/launch\n  build-context-store: https://myaccount.blob.core.windows.net/contexts\n',
        [
          'environment: azure (Azure',
          '(Azure Container Registry (acr), from builder.destination)',
          'context store: https://myaccount.blob.core.windows.net/contexts (Azure Blob Storage',
        ],
      ],
    ];
    for (const [name, yaml, expected] of examples) {
      const cfg = join(b.dir, `${name}.yaml`);
      await writeFile(cfg, yaml);
      const r = await cli(['config', 'check', '-c', cfg], env);
      const out = r.stdout + r.stderr;
      expect(r.code, out).toBe(0);
      expect(out).toContain('builder: kaniko (builder.type)');
      for (const line of expected) expect(out, name).toContain(line);
      expect(out, name).not.toMatch(/warning: .*(?:not used|ignores)|error:/);
    }
  });
});

const docker = dockerService();
const ECR_HOST = '123456789012.dkr.ecr.us-east-1.amazonaws.com';

/** One ECR JSON-protocol call to moto (moto routes by the credential scope and X-Amz-Target; it checks no signature). */
async function ecr(endpoint: string, action: string, body: unknown): Promise<unknown> {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `AmazonEC2ContainerRegistry_V20150921.${action}`,
      authorization: 'AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`moto ${action}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Tags the test engine holds for `repository`. */
function engineTags(socketPath: string, repository: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const filters = encodeURIComponent(JSON.stringify({ reference: [repository] }));
    const req = request({ socketPath, path: `/images/json?filters=${filters}` }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        const images = JSON.parse(text) as { RepoTags?: string[] }[];
        resolve(images.flatMap((i) => i.RepoTags ?? []).filter((t) => t.startsWith(`${repository}:`)));
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe.runIf(serviceAvailable('moto and the test Docker engine (scripts/ci/install-moto.sh)', motoInstalled() && !!docker))(
  'the docker builder with an ECR destination, against moto',
  () => {
    let moto: RunningMoto;
    beforeAll(async () => {
      moto = await startMoto();
      await ecr(moto.endpoint, 'CreateRepository', { repositoryName: 'launch-e2e' });
    });
    afterAll(async () => {
      await moto?.close();
    });

    it('checks the ECR repository through DescribeImages: a missing tag is built (the push cannot reach ECR here), a present one is reused and run', async () => {
      const b = await sandbox({
        DOCKER_HOST: `unix://${docker!.socketPath}`,
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing-secret-e2e',
        AWS_ENDPOINT_URL: moto.endpoint,
      });
      const code = join(b.dir, 'code');
      await mkdir(code, { recursive: true });
      await writeFile(join(code, 'Dockerfile'), 'FROM localhost/busybox:test\nCOPY run.sh /run.sh\nENTRYPOINT ["sh", "/run.sh"]\n');
      await writeFile(join(code, 'run.sh'), 'echo ran-from-ecr-tag\n');
      const cfg = join(b.dir, 'launch-config.yaml');
      await writeFile(cfg, `environment:\n  type: aws\n  region: us-east-1\nbuilder:\n  type: docker\n  destination: ${ECR_HOST}/launch-e2e\n`);
      const check = await cli(['config', 'check', '-c', cfg], b.env);
      expect(check.code, check.stderr).toBe(0);
      expect(check.stdout + check.stderr).toContain(`registry: ${ECR_HOST}/launch-e2e (Amazon ECR (ecr), from builder.destination)`);

      const first = (await cli(['enqueue', '--context', code], b.env)).stdout.trim();
      const r1 = await cli(['run', '-c', cfg, '--exit-when-idle'], b.env, 180_000);
      expect(r1.code, r1.stderr).toBe(0);
      // Built locally under the ECR name; the push to the real ECR host cannot work on this machine.
      const tags = await engineTags(docker!.socketPath, `${ECR_HOST}/launch-e2e`);
      expect(tags, r1.stderr).toHaveLength(1);
      const failed = (await status(b.env)).items.find((i) => i.id === first);
      expect(failed).toMatchObject({ state: 'failed', failure: { stage: 'build' } });
      expect(failed!.failure!.message).toContain(ECR_HOST);

      // The tag appears in the repository (as if pushed): the next identical job skips the build.
      const tag = tags[0]!.split(':').pop()!;
      await ecr(moto.endpoint, 'PutImage', {
        repositoryName: 'launch-e2e',
        imageTag: tag,
        imageManifest: JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
          config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: 2, digest: `sha256:${'a'.repeat(64)}` },
          layers: [],
        }),
      });
      const second = (await cli(['enqueue', '--context', code], b.env)).stdout.trim();
      const r2 = await cli(['run', '-c', cfg, '--exit-when-idle'], b.env, 180_000);
      expect(r2.code, r2.stderr).toBe(0);
      expect(r2.stderr).toContain(`[${second}] image ${ECR_HOST}/launch-e2e:${tag} (cached)`);
      // The image is in the engine already (built by the first job), so the container runs from it.
      const s = await status(b.env);
      expect(s.items.find((i) => i.id === second)).toMatchObject({ state: 'finished', exitCode: 0 });
      for (const text of [r1.stderr, r2.stderr, JSON.stringify(s)]) expect(text).not.toContain('testing-secret-e2e');
    });
  },
);
