import { describe, expect, it } from 'vitest';
import { LaunchValidationError } from '../errors.js';
import { mergeQueueConfig, parseQueueConfig, type QueueConfig } from './queue-config.js';
import { renderTemplate, resolveTemplateValues, type TemplateVariableDeclaration } from './template-vars.js';

/** The messages of a LaunchValidationError thrown by `fn`, by path. */
function issuesOf(fn: () => unknown): Record<string, string> {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof LaunchValidationError)) throw error;
    return Object.fromEntries(error.issues.map((i) => [i.path, i.message]));
  }
  throw new Error('expected a LaunchValidationError, nothing was thrown');
}

const k8s: QueueConfig = parseQueueConfig({
  resource: 'kubernetes',
  resource_args: {
    kubernetes: {
      metadata: { namespace: 'ml', labels: { run: '${run_id}' } },
      spec: {
        backoffLimit: '{{retries}}',
        template: { spec: { containers: [{ image: '${image_uri}', resources: { limits: { cpu: '{{cpu}}', memory: '{{mem}}Gi' } } }] } },
      },
    },
  },
  template_variables: {
    cpu: { schema: { type: 'integer', minimum: 1, maximum: 8, default: 2 } },
    mem: { schema: { type: 'number', minimum: 0.5, maximum: 64 } },
    retries: { schema: { type: 'int', enum: [0, 1, 3] }, description: 'pod retries' },
  },
});

describe('queue config: bad input', () => {
  const cases: [string, unknown, Record<string, RegExp>][] = [
    ['not a mapping', ['kubernetes'], { '': /expected a mapping with resource, resource_args and template_variables, found an array/ }],
    ['no resource', { resource_args: {} }, { resource: /expected a resource name .*found nothing/ }],
    [
      'an unknown key, with a did-you-mean',
      { resource: 'kubernetes', template_variable: {} },
      { template_variable: /unknown key "template_variable" \(did you mean "template_variables"\?\)/ },
    ],
    ['a typo of a W&B resource', { resource: 'kubernets' }, { resource: /found "kubernets" \(did you mean "kubernetes"\?\)/ }],
    [
      'a manifest directly under resource_args',
      { resource: 'kubernetes', resource_args: { apiVersion: 'batch/v1', spec: {} } },
      { resource_args: /"apiVersion", "spec" directly under resource_args: W&B keys resource_args by resource, so move them under resource_args.kubernetes/ },
    ],
    [
      'arguments for another resource',
      { resource: 'kubernetes', resource_args: { 'local-container': { gpus: 'all' } } },
      { 'resource_args.local-container': /the queue runs resource "kubernetes", so arguments for "local-container" would never be used/ },
    ],
    [
      'an undeclared placeholder, with a did-you-mean',
      {
        resource: 'kubernetes',
        resource_args: { kubernetes: { spec: { parallelism: '{{cpus}}' } } },
        template_variables: { cpu: { schema: { type: 'integer' } } },
      },
      {
        'resource_args.kubernetes.spec.parallelism': /the placeholder \{\{cpus\}\} has no declaration \(did you mean "cpu"\?\): add template_variables.cpus/,
        'template_variables.cpu': /declared but resource_args has no \{\{cpu\}\}/,
      },
    ],
    [
      'a malformed placeholder and one in a key',
      { resource: 'kubernetes', resource_args: { kubernetes: { a: '{{ a.b }}', '{{k}}': 1 } }, template_variables: { k: { schema: { type: 'string' } } } },
      {
        'resource_args.kubernetes.a': /malformed placeholder \{\{ a.b \}\}/,
        'resource_args.kubernetes.{{k}}': /is in a mapping key: template variables fill values only/,
      },
    ],
    [
      'an unknown type, a misspelt bound',
      {
        resource: 'local-container',
        resource_args: { 'local-container': { a: '{{x}}', b: '{{y}}' } },
        template_variables: { x: { schema: { type: 'bool' } }, y: { schema: { type: 'integer', min: 1 } } },
      },
      {
        'template_variables.x.schema.type': /expected one of "string", "integer", "number", "int", "float", found "bool"/,
        'template_variables.y.schema.min': /unknown key "min" \(did you mean "minimum"\?\)/,
      },
    ],
    [
      'declarations that break their own rules',
      {
        resource: 'local-container',
        resource_args: { 'local-container': { a: '{{a}}', b: '{{b}}', c: '{{c}}', d: '{{d}}' } },
        template_variables: {
          a: { schema: { type: 'integer', minimum: 5, maximum: 1 } },
          b: { schema: { type: 'integer', minimum: 1, maximum: 4, default: 9 } },
          c: { schema: { type: 'string', maximum: 3, enum: ['x', 2] } },
          d: { schema: { type: 'number', default: '1.5' } },
        },
      },
      {
        'template_variables.a.schema.minimum': /expected a minimum <= the maximum 1, found 5/,
        'template_variables.b.schema.default': /the default must be an integer between 1 and 4, found number 9/,
        'template_variables.c.schema.maximum': /maximum applies to integer and number variables only/,
        'template_variables.c.schema.enum[1]': /expected a string \(the variable's type\), found number 2/,
        'template_variables.d.schema.default': /the default must be a number, found "1.5"/,
      },
    ],
  ];
  for (const [what, raw, expected] of cases) {
    it(`refuses ${what}, naming the field`, () => {
      const issues = issuesOf(() => parseQueueConfig(raw, 'gpu'));
      for (const [path, message] of Object.entries(expected)) expect(issues[path], `${path} in ${JSON.stringify(issues)}`).toMatch(message);
    });
  }

  it('names the queue and the docs in the error', () => {
    try {
      parseQueueConfig({ resource: 'kubernets' }, 'gpu');
    } catch (error) {
      expect((error as LaunchValidationError).code).toBe('queue_config.invalid');
      expect((error as LaunchValidationError).message).toMatch(/^queue config of "gpu" is invalid:/);
      return;
    }
    throw new Error('not refused');
  });
});

describe('template variable values: bad input', () => {
  const decls = k8s.template_variables as Record<string, TemplateVariableDeclaration>;
  const cases: [string, Record<string, unknown>, Record<string, RegExp>][] = [
    [
      'a float for an integer',
      { cpu: '2.5', mem: '1' },
      { 'template_variables.cpu': /template variable "cpu": expected an integer between 1 and 8, found value "2.5"/ },
    ],
    ['text for a number', { mem: 'lots' }, { 'template_variables.mem': /expected a number between 0.5 and 64, found value "lots"/ }],
    ['a value above the maximum', { cpu: '9', mem: '1' }, { 'template_variables.cpu': /expected an integer between 1 and 8, found value 9/ }],
    ['a value below the minimum', { mem: 0.1 }, { 'template_variables.mem': /expected a number between 0.5 and 64, found value 0.1/ }],
    ['a value outside the enum', { mem: '1', retries: '2' }, { 'template_variables.retries': /expected one of 0, 1, 3, found value number 2/ }],
    [
      'a missing required variable',
      {},
      {
        'template_variables.mem':
          /template variable "mem" needs a value: expected a number between 0.5 and 64, found none, and it has no default \(give --template-var mem=VALUE\)/,
      },
    ],
    [
      'an unknown variable, with a did-you-mean',
      { mem: '1', cpus: '2' },
      { 'template_variables.cpus': /queue "gpu" has no template variable "cpus" \(did you mean "cpu"\?\): its variables are "cpu", "mem", "retries"/ },
    ],
    ['Infinity for a number', { mem: 'Infinity' }, { 'template_variables.mem': /found value "Infinity"/ }],
  ];
  for (const [what, given, expected] of cases) {
    it(`refuses ${what}`, () => {
      const issues = issuesOf(() => resolveTemplateValues(decls, given, 'gpu'));
      for (const [path, message] of Object.entries(expected)) expect(issues[path], JSON.stringify(issues)).toMatch(message);
    });
  }

  it('refuses a number for a string variable (quote it)', () => {
    const issues = issuesOf(() => resolveTemplateValues({ zone: { schema: { type: 'string' } } }, { zone: 3 }, 'q'));
    expect(issues['template_variables.zone']).toMatch(/expected a string, found value number 3 \(quote it: the variable is a string\)/);
  });

  it('types values from a command line and adds defaults', () => {
    expect(resolveTemplateValues(decls, { mem: '2.5', retries: '3' }, 'gpu')).toEqual({ cpu: 2, mem: 2.5, retries: 3 });
  });
});

describe('rendering', () => {
  it('keeps a whole-string placeholder typed and fills embedded ones as text; macros stay', () => {
    const out = renderTemplate({ n: '{{n}}', s: 'x-{{n}}-{{ s }}', keep: '${run_id}', list: ['{{s}}'], other: '{{unknown}}' }, { n: 3, s: 'a' });
    expect(out).toEqual({ n: 3, s: 'x-3-a', keep: '${run_id}', list: ['a'], other: '{{unknown}}' });
  });
});

describe('merging a queue config into a spec (W&B server rule)', () => {
  const spec = { entity: 'e', project: 'p', docker: { docker_image: 'img:1' } };

  it('the queue gives resource and resource_args, filled with typed values and defaults; macros are left for the agent', () => {
    const { spec: merged, values } = mergeQueueConfig(
      k8s,
      { ...spec, template_variables: { mem: '4', retries: 1 } },
      { queue: 'gpu', templateVariables: { retries: '3' } },
    );
    expect(values).toEqual({ cpu: 2, mem: 4, retries: 3 });
    expect(merged).toEqual({
      ...spec,
      resource: 'kubernetes',
      resource_args: {
        kubernetes: {
          metadata: { namespace: 'ml', labels: { run: '${run_id}' } },
          spec: { backoffLimit: 3, template: { spec: { containers: [{ image: '${image_uri}', resources: { limits: { cpu: 2, memory: '4Gi' } } }] } } },
        },
      },
    });
    expect(merged).not.toHaveProperty('template_variables');
  });

  it("the spec's own resource_args keys replace the queue's, key by key, when no values are given", () => {
    const queue = parseQueueConfig({ resource: 'local-container', resource_args: { 'local-container': { gpus: 'all', 'shm-size': '1g' } } });
    const { spec: merged } = mergeQueueConfig(queue, { ...spec, resource_args: { 'local-container': { 'shm-size': '8g' } } }, { queue: 'box' });
    expect((merged as { resource_args: unknown }).resource_args).toEqual({ 'local-container': { gpus: 'all', 'shm-size': '8g' } });
  });

  it('refuses what W&B would silently change or drop', () => {
    expect(issuesOf(() => mergeQueueConfig(k8s, { ...spec, resource: 'local-process' }, { queue: 'gpu', templateVariables: { mem: 1, retries: 0 } }))).toEqual({
      resource: expect.stringMatching(/queue "gpu" runs resource "kubernetes" \(its queue config\), but the spec says "local-process"/),
    });
    expect(
      issuesOf(() =>
        mergeQueueConfig(k8s, { ...spec, resource_args: { kubernetes: { spec: {} } } }, { queue: 'gpu', templateVariables: { mem: 1, retries: 0 } }),
      ),
    ).toEqual({
      resource_args: expect.stringMatching(/only one can be set \(W&B's client drops the resource_args\)/),
    });
    const box = parseQueueConfig({ resource: 'local-container' });
    expect(issuesOf(() => mergeQueueConfig(box, { ...spec, resource_args: { kubernetes: {} } }, { queue: 'box' }))).toEqual({
      'resource_args.kubernetes': expect.stringMatching(/queue "box" runs resource "local-container": arguments for "kubernetes" would never be used/),
    });
  });

  it("refuses a placeholder left unfilled in the spec's own resource_args", () => {
    const box = parseQueueConfig({ resource: 'local-container' });
    expect(issuesOf(() => mergeQueueConfig(box, { ...spec, resource_args: { 'local-container': { gpus: '{{gpus}}' } } }, { queue: 'box' }))).toEqual({
      'resource_args.local-container.gpus': expect.stringMatching(/the placeholder \{\{gpus\}\} is left unfilled: it is in the spec's own resource_args/),
    });
  });

  it('without a config: a spec passes as it is, template values are refused', () => {
    const plain = { anything: 1 };
    expect(mergeQueueConfig(undefined, plain, { queue: 'q' }).spec).toBe(plain);
    expect(mergeQueueConfig(undefined, 'not even an object', { queue: 'q' }).spec).toBe('not even an object');
    expect(issuesOf(() => mergeQueueConfig(undefined, spec, { queue: 'q', templateVariables: { cpu: '1' } }))).toEqual({
      'template_variables.cpu': expect.stringMatching(/queue "q" has no template variable "cpu": it declares no template variables/),
    });
  });

  it('does not modify its inputs', () => {
    const input = { ...spec, template_variables: { mem: '1', retries: 0 } };
    const before = JSON.stringify([k8s, input]);
    mergeQueueConfig(k8s, input, { queue: 'gpu' });
    expect(JSON.stringify([k8s, input])).toBe(before);
  });
});
