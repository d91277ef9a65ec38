import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dockerService, registryServices, serviceAvailable } from '@launch/testkit';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cli, readText, sandbox, status } from './helpers.js';

// A job's code given with `enqueue --context DIR` is built by the docker builder, pushed to the real registry and run
// as a container; an identical second job reuses the image.
const docker = dockerService();
const reg = registryServices();

describe.runIf(serviceAvailable('the test Docker engine and registries', !!docker && !!reg))('building job code through the binary', () => {
  beforeAll(() => assertBuilt());
  const box = () => sandbox({ DOCKER_HOST: `unix://${docker!.socketPath}` });
  async function code(dir: string, dockerfile: string) {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'Dockerfile'), dockerfile);
    await writeFile(join(dir, 'run.sh'), 'echo built-and-ran\n');
  }
  async function enqueueCode(env: Record<string, string>, _dir: string, _name: string, codeDir: string) {
    const r = await cli(['enqueue', '--context', codeDir], env);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  }
  async function config(dir: string, destination: string) {
    const p = join(dir, 'launch-config.yaml');
    await writeFile(p, `builder:\n  type: docker\n  destination: ${destination}\n`);
    return p;
  }

  it('builds, pushes and runs a job; the identical second job reuses the pushed image', async () => {
    const b = await box();
    const c = join(b.dir, 'code');
    await code(c, 'FROM localhost/busybox:test\nCOPY run.sh /run.sh\nENTRYPOINT ["sh", "/run.sh"]\n');
    const cfg = await config(b.dir, `${reg!.plain}/e2e/app`);
    const first = await enqueueCode(b.env, b.dir, 'a', c);
    const r1 = await cli(['run', '-c', cfg, '--exit-when-idle'], b.env, 120_000);
    expect(r1.code, r1.stderr).toBe(0);
    const built = new RegExp(`\\[${first}\\] image (${reg!.plain.replace(/\./g, '\\.')}/e2e/app:[0-9a-f]{16}) built`).exec(r1.stderr);
    expect(built, r1.stderr).not.toBeNull();
    const tags = (await (await fetch(`http://${reg!.plain}/v2/e2e/app/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toEqual([built![1]!.split(':').pop()]);
    expect(await readText(join(b.stateDir, 'logs', `${first}.log`))).toContain('built-and-ran');

    const second = await enqueueCode(b.env, b.dir, 'b', c);
    const r2 = await cli(['run', '-c', cfg, '--exit-when-idle'], b.env, 120_000);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toContain(`[${second}] image ${built![1]} (cached)`);
    expect(r2.stderr).not.toMatch(/Step 1\/|built$/m);
    const s = await status(b.env);
    for (const id of [first, second]) expect(s.items.find((i) => i.id === id)).toMatchObject({ state: 'finished', exitCode: 0 });
  });

  it('fails a failing RUN at stage build with the output tail', async () => {
    const b = await box();
    const c = join(b.dir, 'bad');
    await code(c, 'FROM localhost/busybox:test\nRUN echo boom-output-line && exit 3\n');
    const id = await enqueueCode(b.env, b.dir, 'a', c);
    const r = await cli(['run', '-c', await config(b.dir, `${reg!.plain}/e2e/bad`), '--exit-when-idle'], b.env, 120_000);
    expect(r.code, r.stderr).toBe(0);
    const item = (await status(b.env)).items.find((i) => i.id === id);
    expect(item).toMatchObject({ state: 'failed', failure: { stage: 'build' } });
    expect(item!.failure!.message).toMatch(/returned a non-zero code: 3/);
    expect(item!.failure!.message).toContain('boom-output-line');
  });

  it('fails on a wrong registry password naming the registry, with the password nowhere', async () => {
    const b = await box();
    const c = join(b.dir, 'code');
    await code(c, 'FROM localhost/busybox:test\nCOPY run.sh /run.sh\n');
    const password = 'Wr0ng-Passw0rd-e2e';
    await mkdir(join(b.home, '.docker'), { recursive: true });
    await writeFile(
      join(b.home, '.docker', 'config.json'),
      JSON.stringify({ auths: { [reg!.basic]: { auth: Buffer.from(`${reg!.username}:${password}`).toString('base64') } } }),
    );
    const id = await enqueueCode(b.env, b.dir, 'a', c);
    const r = await cli(['run', '-c', await config(b.dir, `${reg!.basic}/e2e/app`), '--exit-when-idle', '-vv', '--log-format', 'json'], b.env, 120_000);
    expect(r.code, r.stderr).toBe(0);
    const item = (await status(b.env)).items.find((i) => i.id === id);
    expect(item).toMatchObject({ state: 'failed', failure: { stage: 'build' } });
    expect(item!.failure!.message).toContain(`registry ${reg!.basic} refused the credentials`);
    const files = [r.stderr, r.stdout, JSON.stringify(item)];
    for (const f of await readdir(join(b.stateDir, 'logs')).catch(() => [])) files.push(await readFile(join(b.stateDir, 'logs', f), 'utf8'));
    for (const text of files) expect(text).not.toContain(password);
  });
});
