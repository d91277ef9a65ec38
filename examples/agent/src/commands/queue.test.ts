import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedQueue } from '@launch/core';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import type { Io } from '../io.js';
import { main } from '../main.js';
import { parseTemplateVarFlags } from './queue.js';

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: team}}]
current-context: x
`;

const GPU_CONFIG = `resource: kubernetes
resource_args:
  kubernetes:
    metadata: {labels: {run: "\${run_id}"}}
    spec:
      backoffLimit: "{{retries}}"
      template:
        spec:
          containers:
            - resources: {limits: {cpu: "{{cpu}}", memory: "{{mem}}Gi"}}
template_variables:
  cpu: {schema: {type: integer, minimum: 1, maximum: 8, default: 2}}
  mem: {schema: {type: number, minimum: 0.5, maximum: 64}}
  retries: {schema: {type: integer, enum: [0, 1, 3], default: 1}, description: pod retries}
`;

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), 'launch-queue-cmd-'));
  await writeFile(join(dir, 'kubeconfig'), KUBECONFIG);
  const env = { HOME: dir, LAUNCH_STATE_DIR: join(dir, 'state'), NO_COLOR: '1', KUBECONFIG: join(dir, 'kubeconfig') };
  const run = async (...argv: string[]) => {
    let stdout = '';
    let stderr = '';
    const io: Io = {
      stdout: { write: (c: string) => (stdout += c) },
      stderr: { write: (c: string) => (stderr += c) },
      env,
      homedir: dir,
      cwd: dir,
      onSignal: () => () => {},
    };
    const code = await main(argv, io);
    return { code, stdout, stderr };
  };
  const file = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };
  return { dir, env, run, file };
}

describe('launch-agent queue', () => {
  it('creates, shows, lists, replaces and deletes a queue config', async () => {
    const s = await setup();
    const path = await s.file('gpu.yaml', GPU_CONFIG);
    const created = await s.run('queue', 'create', 'gpu', '--file', path);
    expect(created.stderr).toBe('launch: queue "gpu": config created (resource kubernetes; template variables cpu:integer=2, mem:number, retries:integer=1)\n');
    expect(created.code).toBe(0);
    const again = await s.run('queue', 'create', 'gpu', '--file', path);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('queue "gpu" already has a queue config');

    const shown = await s.run('queue', 'show', 'gpu');
    expect(shown.code).toBe(0);
    expect(yaml.load(shown.stdout)).toEqual(yaml.load(GPU_CONFIG));
    expect(JSON.parse((await s.run('queue', 'show', 'gpu', '--json')).stdout)).toEqual(yaml.load(GPU_CONFIG));

    expect((await s.run('queue', 'create', 'cpu', '--resource', 'local-process')).code).toBe(0);
    const listed = await s.run('queue', 'list');
    expect(listed.stdout).toBe(
      ['QUEUE  RESOURCE       TEMPLATE VARIABLES', 'cpu    local-process  -', 'gpu    kubernetes     cpu:integer=2, mem:number, retries:integer=1', ''].join(
        '\n',
      ),
    );

    const replacement = await s.file(
      'cpu.json',
      JSON.stringify({
        resource: 'local-container',
        resource_args: { 'local-container': { gpus: '{{n}}' } },
        template_variables: { n: { schema: { type: 'int', default: 0 } } },
      }),
    );
    expect((await s.run('queue', 'edit', 'cpu', '--file', replacement)).code).toBe(0);
    expect((await s.run('queue', 'show', 'cpu')).stdout).toContain("gpus: '{{n}}'");

    expect((await s.run('queue', 'delete', 'cpu')).code).toBe(0);
    const gone = await s.run('queue', 'show', 'cpu');
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('queue "cpu" has no queue config');
  });

  it('refuses a bad config with every issue listed, exit 2, and stores nothing', async () => {
    const s = await setup();
    const path = await s.file(
      'bad.yaml',
      'resource: kubernets\nresource_args: {kubernetes: {a: "{{x}}"}}\ntemplate_variables: {x: {schema: {type: integer, min: 1}}}\n',
    );
    const r = await s.run('queue', 'create', 'gpu', '--file', path);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('queue config of "gpu" is invalid:');
    expect(r.stderr).toContain('template_variables.x.schema.min: unknown key "min" (did you mean "minimum"?)');
    expect((await s.run('queue', 'show', 'gpu')).code).toBe(2);
    expect((await s.run('queue', 'create', 'gpu')).stderr).toContain('give the config with --file FILE, or only its resource with --resource R');
    expect((await s.run('queue', 'frobnicate')).code).toBe(2);
    // A stored config broken by hand: enqueue refuses it with the file named, list shows it, edit replaces it.
    await s.run('queue', 'create', 'box', '--resource', 'local-container');
    const stored = join(s.env.LAUNCH_STATE_DIR, 'queue-configs', 'box.json');
    await writeFile(stored, '{"v":1,"config":{"resource":"local-containr"}}');
    const refused = await s.run('enqueue', '-q', 'box', '--', 'true');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`queue config file ${stored} is invalid:`);
    const listed = await s.run('queue', 'list');
    expect(listed.code).toBe(1);
    expect(listed.stdout).toMatch(/box\s+-\s+unreadable: queue config file .* is invalid/);
    const replaced = await s.run('queue', 'edit', 'box', '--file', await s.file('box.yaml', 'resource: local-container\n'));
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(replaced.stderr).toContain('the stored config of queue "box" is unusable');
    expect((await s.run('queue', 'show', 'gpu', '--resource', 'x')).stderr).toContain('--resource does not apply to "queue show"');
  });

  it('enqueue merges the config with typed --template-var values; bad values exit 2 and queue nothing', async () => {
    const s = await setup();
    await s.run('queue', 'create', 'gpu', '--file', await s.file('gpu.yaml', GPU_CONFIG));
    const spec = await s.file('job.json', JSON.stringify({ entity: 'e', project: 'p', docker: { docker_image: 'img:1' } }));

    const bad = await s.run('enqueue', '-q', 'gpu', '--spec', spec, '--template-var', 'cpu=2.5', '--template-var', 'cpus=1');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('template variables for queue "gpu" is invalid:');
    expect(bad.stderr).toContain('template_variables.cpus: queue "gpu" has no template variable "cpus" (did you mean "cpu"?)');
    expect(bad.stderr).toContain('template_variables.cpu: template variable "cpu": expected an integer between 1 and 8, found value "2.5"');
    expect(bad.stderr).toContain('template_variables.mem: template variable "mem" needs a value');
    expect((await s.run('enqueue', '-q', 'gpu', '--spec', spec, '--template-var', 'cpu')).stderr).toContain('--template-var expects NAME=VALUE, got "cpu"');

    const ok = await s.run('enqueue', '-q', 'gpu', '--spec', spec, '--template-var', 'mem=1.5', '--template-var', 'cpu=4');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toContain('launch: queue "gpu"\'s config merged in: resource kubernetes; template variables cpu=4, mem=1.5, retries=1');
    const queue = createEmbeddedQueue({ stateDir: s.env.LAUNCH_STATE_DIR });
    try {
      const items = await queue.list({ queue: 'gpu' });
      expect(items).toHaveLength(1);
      expect(items[0]!.spec).toEqual({
        entity: 'e',
        project: 'p',
        docker: { docker_image: 'img:1' },
        resource: 'kubernetes',
        resource_args: {
          kubernetes: {
            metadata: { labels: { run: '${run_id}' } },
            spec: { backoffLimit: 1, template: { spec: { containers: [{ resources: { limits: { cpu: 4, memory: '1.5Gi' } } }] } } },
          },
        },
      });
    } finally {
      await queue.close();
    }
  });

  it("a command after -- runs on the queue's resource; a spec that names another one is refused", async () => {
    const s = await setup();
    await s.run('queue', 'create', 'box', '--file', await s.file('box.yaml', 'resource: local-container\nresource_args: {local-container: {shm-size: 1g}}\n'));
    const dry = await s.run('enqueue', '-q', 'box', '--dry-run', '--', 'python', 'train.py');
    expect(dry.stdout).toContain('resource: local-container (runner local-container)');
    expect(dry.stdout).toContain('shm-size: 1g');
    const conflicting = await s.file('job.json', JSON.stringify({ resource: 'local-process', overrides: { entry_point: ['python'] } }));
    const r = await s.run('enqueue', '-q', 'box', '--spec', conflicting);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('resource: queue "box" runs resource "local-container" (its queue config), but the spec says "local-process"');
  });

  it('check shows the merged submission with macros filled, and lists template problems (exit 2)', async () => {
    const s = await setup();
    await s.run('queue', 'create', 'gpu', '--file', await s.file('gpu.yaml', GPU_CONFIG));
    const spec = await s.file('job.json', JSON.stringify({ entity: 'e', project: 'p', run_id: 'fixedrun1', docker: { docker_image: 'img:1' } }));
    const r = await s.run('check', '-q', 'gpu', '--spec', spec, '--template-var', 'mem=2', '--template-var', 'retries=3');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('note: queue "gpu"\'s config merged in: resource kubernetes; template variables cpu=2, mem=2, retries=3');
    const manifest = yaml.loadAll(r.stdout.split('---\n').slice(1).join('---\n'))[0] as {
      metadata: { labels: Record<string, string> };
      spec: { backoffLimit: number; template: { spec: { containers: { resources: unknown }[] } } };
    };
    expect(manifest.metadata.labels.run).toBe('fixedrun1');
    expect(manifest.spec.backoffLimit).toBe(3);
    expect(manifest.spec.template.spec.containers[0]!.resources).toEqual({ limits: { cpu: 2, memory: '2Gi' } });

    const bad = await s.run('check', '-q', 'gpu', '--spec', spec, '--template-var', 'retries=2');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('launch: problem: spec: template variables for queue "gpu" is invalid:');
    expect(bad.stderr).toContain('template_variables.retries: template variable "retries": expected one of 0, 1, 3, found value number 2');
  });
});

describe('--template-var flags', () => {
  it('splits at the first "=" and refuses a missing name or a repeated one', () => {
    expect(parseTemplateVarFlags(['a=1', 'b=x=y', 'c='], 'enqueue')).toEqual({ a: '1', b: 'x=y', c: '' });
    expect(() => parseTemplateVarFlags(['=1'], 'enqueue')).toThrow('--template-var expects NAME=VALUE, got "=1"');
    expect(() => parseTemplateVarFlags(['a=1', 'a=2'], 'enqueue')).toThrow('--template-var a is given twice');
  });
});
