import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startKubeTestServer, type KubeTestServer } from '@launch/testkit';
import { assertBuilt, cli, sandbox, status } from './helpers.js';

beforeAll(() => assertBuilt());

let server: KubeTestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const GPU_CONFIG = `resource: kubernetes
resource_args:
  kubernetes:
    metadata:
      labels: {team: "{{team}}", run: "\${run_id}"}
    spec:
      backoffLimit: "{{retries}}"
      ttlSecondsAfterFinished: 3600
      template:
        spec:
          containers:
            - resources: {limits: {cpu: "{{cpu}}", memory: "{{mem}}Gi"}}
template_variables:
  cpu: {schema: {type: integer, minimum: 1, maximum: 8, default: 2}}
  mem: {schema: {type: number, minimum: 0.5, maximum: 64}}
  retries: {schema: {type: integer, enum: [0, 1, 3], default: 1}}
  team: {schema: {type: string, enum: [vision, speech]}, description: who pays}
`;

/** An $EDITOR: a node script that rewrites the file it is given (replacing FROM with TO). */
async function editorScript(dir: string, name: string, from: string, to: string): Promise<string> {
  const path = join(dir, `${name}.mjs`);
  await writeFile(
    path,
    `import { readFileSync, writeFileSync } from 'node:fs';\nconst f = process.argv[2];\nwriteFileSync(f, readFileSync(f, 'utf8').replace(${JSON.stringify(from)}, ${JSON.stringify(to)}));\n`,
  );
  return `${JSON.stringify(process.execPath)} ${JSON.stringify(path)}`;
}

describe('launch-agent queue configs', () => {
  it('create, show, edit (editor and --file), list and delete through the binary', async () => {
    const box = await sandbox();
    const file = join(box.dir, 'gpu.yaml');
    await writeFile(file, GPU_CONFIG);
    const created = await cli(['queue', 'create', 'gpu', '--file', file], box.env);
    expect(created.code, created.stderr).toBe(0);
    const shown = await cli(['queue', 'show', 'gpu'], box.env);
    expect(yaml.load(shown.stdout)).toEqual(yaml.load(GPU_CONFIG));

    // A good edit is saved.
    const good = await cli(['queue', 'edit', 'gpu'], { ...box.env, EDITOR: await editorScript(box.dir, 'good', 'maximum: 8', 'maximum: 16') });
    expect(good.code, good.stderr).toBe(0);
    expect(good.stderr).toContain('launch: queue "gpu": config saved');
    expect(
      (yaml.load((await cli(['queue', 'show', 'gpu'], box.env)).stdout) as { template_variables: { cpu: { schema: { maximum: number } } } }).template_variables
        .cpu.schema.maximum,
    ).toBe(16);

    // A bad edit is refused with the problem named, nothing saved, and the edit kept for a retry with --file.
    const bad = await cli(['queue', 'edit', 'gpu'], { ...box.env, EDITOR: await editorScript(box.dir, 'bad', 'default: 2', 'default: 99') });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('template_variables.cpu.schema.default: the default must be an integer between 1 and 16, found number 99');
    const kept = /Your edit is kept in (\S+);/.exec(bad.stderr)?.[1];
    expect(kept).toBeDefined();
    expect(await readFile(kept!, 'utf8')).toContain('default: 99');
    expect((await cli(['queue', 'show', 'gpu'], box.env)).stdout).toContain('default: 2');

    // An editor that fails saves nothing.
    const failed = await cli(['queue', 'edit', 'gpu'], { ...box.env, EDITOR: 'false' });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('launch: the editor (false) exited with code 1: nothing saved');

    const fixedFile = join(box.dir, 'fixed.yaml');
    await writeFile(fixedFile, (await readFile(kept!, 'utf8')).replace('default: 99', 'default: 3'));
    const fixed = await cli(['queue', 'edit', 'gpu', '--file', fixedFile], box.env);
    expect(fixed.code, fixed.stderr).toBe(0);

    const listed = await cli(['queue', 'list', '--json'], box.env);
    expect(JSON.parse(listed.stdout)).toMatchObject([{ queue: 'gpu', config: { resource: 'kubernetes' } }]);
    expect((await cli(['queue', 'delete', 'gpu'], box.env)).code).toBe(0);
    expect((await cli(['queue', 'list'], box.env)).stdout).toBe('No queue configs.\n');
  });

  it("enqueue --template-var is checked against the queue's schema, and the merged resource_args reach the Kubernetes Job", async () => {
    server = await startKubeTestServer({ kubelet: { stepDelayMs: 5 } });
    const box = await sandbox({ KUBECONFIG: server.kubeconfigPath, LAUNCH_AGENT_NAME: 'it-agent' });
    const file = join(box.dir, 'gpu.yaml');
    await writeFile(file, GPU_CONFIG);
    expect((await cli(['queue', 'create', 'gpu', '--file', file], box.env)).code).toBe(0);
    const spec = join(box.dir, 'job.yaml');
    await writeFile(
      spec,
      ['entity: acme', 'project: demo', 'docker: { docker_image: "busybox:1" }', 'overrides: { entry_point: ["sh", "-c", "echo hi"] }'].join('\n'),
    );

    const bad = await cli(['enqueue', '-q', 'gpu', '--spec', spec, '--template-var', 'mem=128', '--template-var', 'team=visoin'], box.env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('template_variables.mem: template variable "mem": expected a number between 0.5 and 64, found value 128');
    expect(bad.stderr).toContain(
      'template_variables.team: template variable "team": expected one of "vision", "speech", found value "visoin" (did you mean "vision"?)',
    );
    const missing = await cli(['enqueue', '-q', 'gpu', '--spec', spec], box.env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('template variable "mem" needs a value');
    expect((await status(box.env)).items).toHaveLength(0);

    const dry = await cli(['enqueue', '-q', 'gpu', '--spec', spec, '--template-var', 'mem=4', '--template-var', 'team=speech', '--dry-run'], box.env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('backoffLimit: 1');
    expect(dry.stdout).toContain('memory: 4Gi');

    const ok = await cli(
      ['enqueue', '-q', 'gpu', '--spec', spec, '--template-var', 'mem=4', '--template-var', 'team=speech', '--template-var', 'cpu=3'],
      box.env,
    );
    expect(ok.code, ok.stderr).toBe(0);
    const run = await cli(['run', '-q', 'gpu', '--exit-when-idle'], box.env);
    expect(run.code, run.stderr).toBe(0);
    expect((await status(box.env)).items.find((i) => i.id === ok.stdout.trim())).toMatchObject({ state: 'finished' });

    const jobs = server.listObjects('/apis/batch/v1/namespaces/default/jobs') as {
      metadata: { labels: Record<string, string> };
      spec: { backoffLimit: number; template: { spec: { containers: { image: string; resources: unknown }[] } } };
    }[];
    expect(jobs).toHaveLength(1);
    const job = jobs[0]!;
    expect(job.metadata.labels).toMatchObject({ team: 'speech', 'wandb.ai/agent': 'it-agent' });
    expect(job.metadata.labels.run).toMatch(/^[A-Za-z0-9._-]+$/); // ${run_id}, filled by the agent
    expect(job.spec.backoffLimit).toBe(1);
    const container = job.spec.template.spec.containers[0] as { image: string; resources: { limits: { cpu: unknown; memory: unknown } } };
    expect(container.image).toBe('busybox:1');
    expect(String(container.resources.limits.cpu)).toBe('3');
    expect(container.resources.limits.memory).toBe('4Gi');
  });
});
