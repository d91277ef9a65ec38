import { describe, expect, it } from 'vitest';
import { LaunchError, LaunchValidationError } from './errors.js';
import { isSchedulerSpec, normalizeLaunchSpec, parseLaunchSpec, SCHEDULER_URI } from './spec.js';

/** The validation error for a refused spec; fails the test when the spec is accepted. */
function refusal(raw: unknown): LaunchValidationError {
  try {
    parseLaunchSpec(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(LaunchValidationError);
    return error as LaunchValidationError;
  }
  throw new Error(`expected the spec to be refused: ${JSON.stringify(raw)}`);
}

const messages = (raw: unknown) => refusal(raw).issues.map((i) => `${i.path}: ${i.message}`);

describe('parseLaunchSpec: what W&B sends is accepted', () => {
  // Reconstructed from wandb/sdk/launch (utils.construct_launch_spec, _launch_add, agent requeue, launch-sweep).
  const examples: Record<string, Record<string, unknown>> = {
    'a job pushed by `wandb launch --job … --queue …`': {
      job: 'acme/proj/job-train:latest',
      entity: 'acme',
      project: 'proj',
      author: 'alice',
      docker: {},
      resource: null,
      git: {},
      overrides: { args: ['--lr', '0.1'], run_config: { lr: 0.1, layers: [1, 2] }, entry_point: ['python', 'train.py'] },
    },
    'an image job (`wandb launch --docker-image`)': {
      uri: null,
      entity: 'acme',
      project: 'proj',
      name: 'run-a',
      docker: { docker_image: 'ghcr.io/acme/train:1', user_id: 1000 },
      resource: 'kubernetes',
      resource_args: {
        kubernetes: { metadata: { namespace: 'ml' }, spec: { template: { spec: { containers: [{ resources: { limits: { 'nvidia.com/gpu': 1 } } }] } } } },
      },
    },
    'a popped item with the server-merged queue config': {
      job: 'acme/proj/job:v3',
      entity: 'acme',
      project: 'proj',
      resource: 'local-container',
      resource_args: { 'local-container': { gpus: 'all', env: ['A=1'], builder: { accelerator: { base_image: 'nvidia/cuda:12.1.0-runtime-ubuntu22.04' } } } },
      _wandb_api_key: 'k'.repeat(40),
      python_version: '3.11',
      image_uri: null,
    },
    'a preempted run requeued by the agent': { job: 'a/b/c:v1', entity: 'a', project: 'b', run_id: 'abc123', _resume_count: 2, sweep_id: null },
    'a sweep scheduler from `wandb launch-sweep`': {
      uri: SCHEDULER_URI,
      entity: 'acme',
      project: 'proj',
      docker: {},
      resource: 'local-process',
      git: {},
      overrides: { run_config: { scheduler: { num_workers: 8 }, settings: { method: 'bayes' } }, entry_point: ['wandb', 'scheduler', 'WANDB_SWEEP_ID'] },
    },
    'a push with template variables and our idempotence id': {
      job: 'a/b/c:v1',
      template_variables: { gpus: 2, image_tag: 'v1' },
      queue_entity: 'team',
      _launch_push_id: '3a1f0d6e-0000-4000-8000-000000000000',
    },
    'additional services, the Kubernetes runner keys and our env': {
      job: 'a/b/c:v1',
      resource: 'kubernetes',
      resource_args: { kubernetes: { namespace: 'ml', wait_for_ready: false, builder: { cuda: { base_image: 'nvidia/cuda:12' } } } },
      additional_services: [{ config: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db' } } }],
      env: { SEED: '1' },
    },
    'a custom runner resource': { resource: 'slurm', resource_args: { slurm: { partition: 'gpu' } } },
    'the local-process spec `enqueue -- CMD` builds': {
      resource: 'local-process',
      overrides: { entry_point: ['echo', 'hi'], working_dir: '/tmp' },
      env: { A: 'b' },
    },
  };
  it.each(Object.entries(examples))('%s', (_name, spec) => {
    expect(parseLaunchSpec(spec)).toEqual(spec);
    expect(normalizeLaunchSpec(spec).spec).toEqual(spec);
  });

  it('never modifies its input', () => {
    const raw = { resource: 'kubernetes', resource_args: { kubernetes: { tolerations: [{ key: 'a' }] } } };
    const copy = structuredClone(raw);
    normalizeLaunchSpec(raw);
    expect(raw).toEqual(copy);
  });
});

describe('parseLaunchSpec: bad input matrix', () => {
  it('names the error family, stage and subject', () => {
    const error = refusal({ image: 'x' });
    expect(error.code).toBe('spec.invalid');
    expect(error.stage).toBe('agent');
    expect(LaunchError.isInstance(error)).toBe(true);
    expect(error.message.startsWith('launch spec is invalid:\n')).toBe(true);
    expect(error.hint).toBe('fix the listed fields; docs/launch-spec.md lists every launch spec key');
  });

  it.each<[string, unknown, string[]]>([
    ['not an object', ['a'], [': expected an object, found an array']],
    ['null', null, [': expected an object, found null']],
    ['text', 'python train.py', [': expected an object, found string']],
    [
      'invented keys',
      { image: 'x', command: ['a'], job_type: 't' },
      [
        'image: unknown key "image": a launch spec names its image in docker.docker_image (or image_uri)',
        'command: unknown key "command": the command goes in overrides.entry_point (a list of strings)',
        'job_type: unknown key "job_type": job_type is a wandb.init setting, not a launch spec key; the job to run goes in job',
      ],
    ],
    ['a typo', { overides: {} }, ['overides: unknown key "overides" (did you mean "overrides"?)']],
    ['an unrelated key', { completely_unrelated: 1 }, ['completely_unrelated: unknown key "completely_unrelated"']],
    ['queue in the spec', { queue: 'gpu' }, ['queue: unknown key "queue": the queue is chosen when the item is enqueued, not in the spec']],
    [
      "W&B's old registry spec key",
      { registry: { url: 'x' } },
      ['registry: unknown key "registry": the registry comes from the agent config (builder.destination), not from the spec (W&B\'s old `registry` spec key)'],
    ],
    ['overrides typo', { overrides: { entrypoint: ['x'] } }, ['overrides.entrypoint: unknown key "entrypoint" (did you mean "entry_point"?)']],
    ['overrides.config', { overrides: { config: {} } }, ['overrides.config: unknown key "config": write it as overrides.run_config']],
    ['docker.image', { docker: { image: 'x' } }, ['docker.image: unknown key "image": write it as docker.docker_image']],
    ['git typo', { git: { commit: 'abc' } }, ['git.commit: unknown key "commit"']],
    [
      'entry_point as text',
      { overrides: { entry_point: 'python train.py' } },
      ['overrides.entry_point: expected a list of strings (the command and its arguments), found "python train.py"'],
    ],
    ['args with a number', { overrides: { args: ['--lr', 0.1] } }, ['overrides.args[1]: expected a string, found number 0.1']],
    ['run_config a list', { overrides: { run_config: [1] } }, ['overrides.run_config: expected a mapping (the run config, WANDB_CONFIG), found an array of 1']],
    ['run id with a space', { run_id: 'a b' }, ['run_id: expected a run id of letters, digits, ".", "_" or "-" (at most 128), found "a b"']],
    ['negative resume count', { _resume_count: -1 }, ['_resume_count: expected an integer >= 0, found number -1']],
    ['api key not a string', { _wandb_api_key: 12345 }, ['_wandb_api_key: expected a string, found a number (secret, not shown)']],
    ['user id text', { docker: { user_id: 'root' } }, ['docker.user_id: expected a user id (an integer >= 0), found "root"']],
    [
      'resource typo',
      { resource: 'kubernets' },
      [
        'resource: expected a resource name (local-container, local, local-process, kubernetes, sagemaker, vertex, gcp-vertex, or a lower-case name a custom runner declares), found "kubernets" (did you mean "kubernetes"?)',
      ],
    ],
    [
      'resource not a name',
      { resource: 'Kubernetes Cluster' },
      [
        'resource: expected a resource name (local-container, local, local-process, kubernetes, sagemaker, vertex, gcp-vertex, or a lower-case name a custom runner declares), found "Kubernetes Cluster"',
      ],
    ],
    [
      'resource_args key typo',
      { resource_args: { 'local-proces': {} } },
      [
        'resource_args.local-proces: expected a resource name (local-container, local, local-process, kubernetes, sagemaker, vertex, gcp-vertex, or a lower-case name a custom runner declares), found the key "local-proces" (did you mean "local-process"?)',
      ],
    ],
    [
      'a manifest directly under resource_args',
      { resource: 'kubernetes', resource_args: { apiVersion: 'batch/v1', kind: 'Job', spec: {} } },
      [
        'resource_args: expected a mapping of resource names to their arguments, found "apiVersion", "kind", "spec" directly under resource_args: W&B keys resource_args by resource, so move them under resource_args.kubernetes',
      ],
    ],
    [
      'resource args not a mapping',
      { resource_args: { kubernetes: 'x' } },
      ['resource_args.kubernetes: expected a mapping of the resource\'s arguments, found "x"'],
    ],
    [
      'builder base image not text',
      { resource_args: { kubernetes: { builder: { cuda: { base_image: 3 } } } } },
      ['resource_args.kubernetes.builder.cuda.base_image: expected an image reference, found number 3'],
    ],
    [
      'builder typo',
      { resource_args: { kubernetes: { builder: { base_imag: 'x' } } } },
      ['resource_args.kubernetes.builder.base_imag: unknown key "base_imag" (did you mean "base_image"?)'],
    ],
    [
      'additional service without config',
      { additional_services: [{ manifest: {} }] },
      ['additional_services[0].config: expected a Kubernetes manifest (a mapping), found nothing', 'additional_services[0].manifest: unknown key "manifest"'],
    ],
    ['template variable a list', { template_variables: { gpus: [1] } }, ['template_variables.gpus: expected a string or a number, found an array of 1']],
    [
      'env with a bad name',
      { env: { '1BAD': 'x' } },
      ['env.1BAD: expected an environment variable name (letters, digits and _, not starting with a digit), found the name "1BAD"'],
    ],
    ['env value a number', { env: { A: 1 } }, ['env.A: expected a string, found number 1']],
    [
      'a sweep config',
      { method: 'bayes', metric: { name: 'loss', goal: 'minimize' }, parameters: { lr: { min: 0.001, max: 0.1 } }, program: 'train.py' },
      [
        ': expected a launch spec, found a W&B sweep config (method, metric, parameters, program): a sweep is not enqueued as a job. Create it with `wandb launch-sweep <config> --queue <queue>`, which puts a sweep scheduler on the queue; the scheduler then enqueues one launch spec per run',
      ],
    ],
    [
      'a Dagster run config',
      { resources: { wandb_config: { config: { entity: 'e', project: 'p' } } }, ops: { run_launch_job: { config: { job: 'e/p/j:latest', queue: 'q' } } } },
      [
        ": expected a launch spec, found a Dagster run config (ops, resources): its launch parameters are under ops.run_launch_job.config, in dagster-wandb's form. Write them as a launch spec: job or docker.docker_image, overrides.entry_point for entry_point, overrides.run_config for config, git.version for version, and the queue as the enqueue queue (docs/launch-spec.md)",
      ],
    ],
  ])('%s', (_name, raw, expected) => {
    expect(messages(raw)).toEqual(expected);
  });

  it("never shows the spec's API key", () => {
    const key = 'f'.repeat(40);
    const error = refusal({ _wandb_api_key: key, run_id: 'bad id', image: key });
    expect(error.message).not.toContain(key);
  });
});

describe("normalizeLaunchSpec: W&B's legacy flat Kubernetes resource_args", () => {
  const k8s = (args: Record<string, unknown>) => ({ resource: 'kubernetes', resource_args: { kubernetes: args } });
  const converted = (args: Record<string, unknown>) => {
    const { spec, warnings } = normalizeLaunchSpec(k8s(args));
    return { manifest: spec.resource_args?.['kubernetes'], warnings: warnings.map((w) => `${w.path}: ${w.message}`) };
  };

  it.each<[string, unknown, Record<string, unknown>]>([
    ['tolerations', [{ key: 'gpu', operator: 'Exists' }], { spec: { template: { spec: { tolerations: [{ key: 'gpu', operator: 'Exists' }] } } } }],
    ['node_selector', { pool: 'a100' }, { spec: { template: { spec: { nodeSelector: { pool: 'a100' } } } } }],
    ['backoff_limit', 2, { spec: { backoffLimit: 2 } }],
    ['job_name', 'train', { metadata: { name: 'train' } }],
    ['job_labels', { team: 'ml' }, { metadata: { labels: { team: 'ml' } } }],
    ['restart_policy', 'OnFailure', { spec: { template: { spec: { restartPolicy: 'OnFailure' } } } }],
    ['volumes', [{ name: 'v', emptyDir: {} }], { spec: { template: { spec: { volumes: [{ name: 'v', emptyDir: {} }] } } } }],
    ['resource_limits', { cpu: '2' }, { spec: { template: { spec: { containers: [{ resources: { limits: { cpu: '2' } } }] } } } }],
    ['resource_requests', { memory: '1Gi' }, { spec: { template: { spec: { containers: [{ resources: { requests: { memory: '1Gi' } } }] } } } }],
    ['volume_mounts', [{ name: 'v', mountPath: '/d' }], { spec: { template: { spec: { containers: [{ volumeMounts: [{ name: 'v', mountPath: '/d' }] }] } } } }],
    ['container_name', 'main', { spec: { template: { spec: { containers: [{ name: 'main' }] } } } }],
    [
      'env',
      { A: '1', B: 2 },
      {
        spec: {
          template: {
            spec: {
              containers: [
                {
                  env: [
                    { name: 'A', value: '1' },
                    { name: 'B', value: '2' },
                  ],
                },
              ],
            },
          },
        },
      },
    ],
    ['env', [{ name: 'A', value: '1' }], { spec: { template: { spec: { containers: [{ env: [{ name: 'A', value: '1' }] }] } } } }],
  ])('converts %s (%j) with a warning', (key, value, manifest) => {
    const out = converted({ [key]: value });
    expect(out.manifest).toEqual(manifest);
    expect(out.warnings).toHaveLength(1);
    expect(out.warnings[0]).toMatch(new RegExp(`^resource_args\\.kubernetes\\.${key}: converted W&B's legacy flat key "${key}" to `));
  });

  it('applies container keys to every container of an existing manifest and keeps the rest', () => {
    const out = converted({ resource_limits: { cpu: '1' }, spec: { template: { spec: { containers: [{ name: 'a' }, { name: 'b', image: 'x' }] } } } });
    expect(out.manifest).toEqual({
      spec: {
        template: {
          spec: {
            containers: [
              { name: 'a', resources: { limits: { cpu: '1' } } },
              { name: 'b', image: 'x', resources: { limits: { cpu: '1' } } },
            ],
          },
        },
      },
    });
  });

  it.each<[string, Record<string, unknown>, string]>([
    [
      'both the flat and the modern form',
      { tolerations: [], spec: { template: { spec: { tolerations: [{ key: 'a' }] } } } },
      'resource_args.kubernetes.tolerations: W&B\'s legacy flat key "tolerations" and spec.template.spec.tolerations are both set: keep only spec.template.spec.tolerations',
    ],
    [
      'a wrong type',
      { tolerations: { key: 'a' } },
      'resource_args.kubernetes.tolerations: W&B\'s legacy flat key "tolerations" expects a list, found an object; the modern form is spec.template.spec.tolerations',
    ],
    [
      'a flat key on a custom resource',
      { apiVersion: 'kubeflow.org/v1', kind: 'PyTorchJob', tolerations: [] },
      'resource_args.kubernetes.tolerations: W&B\'s legacy flat key "tolerations" only applied to plain Jobs; this manifest is a PyTorchJob: put it in its pod template',
    ],
    [
      'job_spec',
      { job_spec: 'job.yaml' },
      'resource_args.kubernetes.job_spec: W&B\'s legacy flat key "job_spec" is not supported: W&B\'s old runner read a Job file named by job_spec; write the Job manifest itself as resource_args.kubernetes (apiVersion, kind, metadata, spec)',
    ],
    [
      'registry',
      { registry: 'r.example.com/x' },
      'resource_args.kubernetes.registry: W&B\'s legacy flat key "registry" is not supported: the registry comes from the agent config: set builder.destination there',
    ],
    [
      'security_context',
      { security_context: { runAsUser: 0 } },
      'resource_args.kubernetes.security_context: W&B\'s legacy flat key "security_context" is not supported: the agent forces a restricted securityContext on every container and refuses securityContext in resource_args (as W&B does)',
    ],
  ])('refuses %s with the modern form shown', (_name, args, message) => {
    let error: unknown;
    try {
      normalizeLaunchSpec(k8s(args));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LaunchValidationError);
    expect((error as LaunchValidationError).issues.map((i) => `${i.path}: ${i.message}`)).toEqual([message]);
  });

  it('leaves the conversion to normalizeLaunchSpec: parseLaunchSpec refuses the flat form, naming the modern one', () => {
    expect(messages(k8s({ tolerations: [] }))).toEqual([
      'resource_args.kubernetes.tolerations: W&B\'s legacy flat key "tolerations": write it as spec.template.spec.tolerations (normalizeLaunchSpec converts it with a warning)',
    ]);
  });

  it('warns about a spec-level builder and resource_args for another resource', () => {
    const { warnings } = normalizeLaunchSpec({
      resource: 'local-process',
      builder: { type: 'docker' },
      resource_args: { kubernetes: {}, 'local-process': {} },
    });
    expect(warnings).toEqual([
      { path: 'builder', message: "ignored: images are built as the agent config's builder block says (W&B ignores a spec-level builder too)" },
      { path: 'resource_args.kubernetes', message: 'ignored: the job runs on resource "local-process"' },
    ]);
  });
});

describe("isSchedulerSpec keeps W&B's rule", () => {
  it('recognises scheduler items that parse as specs', () => {
    const sched = parseLaunchSpec({ uri: SCHEDULER_URI, resource: 'local-process', overrides: { entry_point: ['wandb', 'scheduler', 'abc'] } });
    expect(isSchedulerSpec(sched)).toBe(true);
    expect(isSchedulerSpec(parseLaunchSpec({ uri: SCHEDULER_URI, resource: 'local-process', overrides: { entry_point: ['python', 'x.py'] } }))).toBe(false);
    expect(isSchedulerSpec(parseLaunchSpec({ uri: SCHEDULER_URI, resource: 'kubernetes', job: 'e/p/sched:latest' }))).toBe(true);
  });
});

/** A small seeded generator (mulberry32) so a failure can be replayed from its seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('parseLaunchSpec: random mappings (property)', () => {
  /**
   * Each known key with values the spec must accept and values it must refuse; a generated spec is
   * valid exactly when it uses only known keys with accepted values. This table is the oracle and is
   * written independently of the schema.
   */
  const KEYS: Record<string, { good: unknown[]; bad: unknown[] }> = {
    job: { good: ['e/p/j:v1', null], bad: [1, ['x'], {}] },
    uri: { good: ['https://github.com/a/b', null], bad: [true] },
    entity: { good: ['e'], bad: [3] },
    resource: { good: ['kubernetes', 'local-process', 'slurm', null], bad: ['kubernets', 'K8S!', 5] },
    run_id: { good: ['abc-1'], bad: ['a b', ''] },
    _resume_count: { good: [0, 3], bad: [-1, 1.5, '2'] },
    docker: { good: [{}, { docker_image: 'x:1' }, { user_id: 1000 }], bad: [{ image: 'x' }, 'x:1', { user_id: -1 }] },
    git: { good: [{ version: 'main' }, {}], bad: [{ branch: 'main' }] },
    overrides: {
      good: [{ entry_point: ['a'] }, { args: [], run_config: { a: [1, { b: null }] } }],
      bad: [{ entry_point: 'a' }, { args: [1] }, { cmd: ['a'] }],
    },
    resource_args: {
      good: [{ kubernetes: { metadata: { name: 'x' } } }, { 'local-container': { gpus: 'all' } }],
      bad: [{ kubernetes: { tolerations: [] } }, { kubernets: {} }, { kubernetes: [] }, { spec: {} }],
    },
    env: { good: [{ A: 'b' }], bad: [{ A: 1 }, ['A=b']] },
    template_variables: { good: [{ a: 1, b: 'x' }], bad: [{ a: [1] }] },
    additional_services: { good: [[{ config: {} }]], bad: [[{}], {}] },
  };
  const UNKNOWN = ['image', 'command', 'foo', 'overides', '__proto__', 'constructor', 'toString', 'method', 'ops', ''];
  const names = Object.keys(KEYS);

  function junk(r: () => number, depth: number): unknown {
    const pick = Math.floor(r() * 8);
    if (depth > 3 || pick < 4) return [null, true, 0, -1.5, 'x', '', 'kubernetes', 1e308][Math.floor(r() * 8)];
    if (pick < 6) return Array.from({ length: Math.floor(r() * 3) }, () => junk(r, depth + 1));
    const out: Record<string, unknown> = {};
    for (let i = Math.floor(r() * 4); i > 0; i--) out[[...names, ...UNKNOWN][Math.floor(r() * (names.length + UNKNOWN.length))]!] = junk(r, depth + 1);
    return out;
  }

  it('accepts exactly the valid ones and never throws anything but a LaunchValidationError', () => {
    let accepted = 0;
    for (let seed = 1; seed <= 3000; seed++) {
      const r = rng(seed);
      const raw: Record<string, unknown> = {};
      let valid = true;
      let oracle = true;
      for (let n = Math.floor(r() * 5); n > 0; n--) {
        const roll = r();
        if (roll < 0.1) {
          const key = UNKNOWN[Math.floor(r() * UNKNOWN.length)]!;
          Object.defineProperty(raw, key, { value: junk(r, 0), enumerable: true, configurable: true, writable: true });
          valid = false;
        } else if (roll < 0.2) {
          raw[names[Math.floor(r() * names.length)]!] = junk(r, 0);
          oracle = false; // random junk under a known key: validity not predicted, only "no crash"
        } else {
          const key = names[Math.floor(r() * names.length)]!;
          const good = r() < 0.7;
          const pool = good ? KEYS[key]!.good : KEYS[key]!.bad;
          raw[key] = structuredClone(pool[Math.floor(r() * pool.length)]);
          if (!good) valid = false;
        }
      }
      // A later write to the same key replaces an earlier one: recompute validity from the final object.
      if (oracle) {
        valid = Object.entries(raw).every(([k, v]) => Object.hasOwn(KEYS, k) && KEYS[k]!.good.some((g) => JSON.stringify(g) === JSON.stringify(v)));
      }
      let ok: boolean;
      try {
        parseLaunchSpec(raw);
        ok = true;
        accepted++;
      } catch (error) {
        if (!(error instanceof LaunchValidationError)) throw new Error(`seed ${seed}: ${String(error)} for ${JSON.stringify(raw)}`);
        expect(error.issues.length, `seed ${seed}`).toBeGreaterThan(0);
        for (const issue of error.issues) expect(typeof issue.path, `seed ${seed}`).toBe('string');
        ok = false;
      }
      if (oracle) expect(ok, `seed ${seed}: ${JSON.stringify(raw)}`).toBe(valid);
      // normalize never accepts what parse refuses unless it converted a legacy key, and never crashes.
      try {
        normalizeLaunchSpec(raw);
      } catch (error) {
        if (!(error instanceof LaunchValidationError)) throw new Error(`seed ${seed} (normalize): ${String(error)}`);
      }
    }
    expect(accepted).toBeGreaterThan(100);
  });
});
