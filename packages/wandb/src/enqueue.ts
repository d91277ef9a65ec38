import { homedir as osHomedir } from 'node:os';
import { LaunchError, PRIORITIES, PRIORITY_VALUE, Redactor, parseLaunchSpec, silentLogger, type Priority } from '@launch/core';
import { createWandbClient, type WandbClient, type WandbClientOptions } from './client.js';
import { resolveWandbSettings } from './settings.js';
import { LAUNCH_PROJECT } from './source.js';

export interface WandbEnqueueOptions extends Omit<WandbClientOptions, 'apiKey' | 'keySource'> {
  /** Default entity of the queue; else the spec's `queue_entity`/`entity`, then `WANDB_ENTITY`. */
  entity?: string;
  apiKey?: string;
  project?: string;
  homedir?: string;
  client?: WandbClient;
}

export interface WandbEnqueueRequest {
  queue: string;
  spec: Record<string, unknown>;
  /** `critical` … `low`, or W&B's number 0 … 3. */
  priority?: Priority | number;
  /** Values for the queue's `{{variables}}`; default the spec's `template_variables`. */
  templateVariables?: Record<string, string | number>;
  /** Overrides the queue's entity. */
  entity?: string;
  /** Check the spec before pushing (default true). */
  validate?: boolean;
}

export interface WandbEnqueueResult {
  id: string;
  queue: string;
  entity: string;
  /** The spec as stored by the server (with the queue's template merged), when returned. */
  runSpec: Record<string, unknown> | null;
}

export interface WandbEnqueueClient {
  enqueue(request: WandbEnqueueRequest): Promise<WandbEnqueueResult>;
  readonly client: WandbClient;
  close(): Promise<void>;
}

function priorityValue(p: Priority | number | undefined): number | undefined {
  if (p === undefined) return undefined;
  if (typeof p === 'number') {
    if (Number.isInteger(p) && p >= 0 && p <= 3) return p;
  } else if ((PRIORITIES as readonly string[]).includes(p)) {
    return PRIORITY_VALUE[p];
  }
  throw new LaunchError({
    code: 'wandb.priority_invalid',
    message: `priority must be one of ${PRIORITIES.join(', ')} (or 0 … 3), found ${JSON.stringify(p)}`,
  });
}

/**
 * The client side of `wandb launch --queue`: pushes a launch spec to a W&B run queue by name
 * (`pushToRunQueueByName`) with a priority and template variable values.
 */
export function createWandbEnqueueClient(options: WandbEnqueueOptions = {}): WandbEnqueueClient {
  const env = options.env ?? process.env;
  const settings = resolveWandbSettings({
    config: { api_key: options.apiKey ?? null, base_url: options.baseUrl ?? null, entity: options.entity ?? null },
    env,
    homedir: options.homedir ?? osHomedir(),
  });
  let client = options.client;
  if (!client) {
    if (!settings.apiKey) {
      throw new LaunchError({
        code: 'wandb.no_api_key',
        message: `no W&B API key for ${settings.baseUrl}: none in the config, WANDB_API_KEY or ~/.netrc`,
        hint: 'set WANDB_API_KEY, add api_key to the config, or run `wandb login`',
      });
    }
    client = createWandbClient({
      ...options,
      apiKey: settings.apiKey,
      baseUrl: settings.baseUrl,
      ...(settings.keySource ? { keySource: settings.keySource } : {}),
      redactor: options.redactor ?? new Redactor(),
      logger: options.logger ?? silentLogger,
    });
  }
  const owned = !options.client;
  const wandb = client;
  const project = options.project ?? LAUNCH_PROJECT;

  return {
    client: wandb,
    async enqueue(request) {
      if (request.validate !== false) parseLaunchSpec(request.spec);
      const spec = { ...request.spec };
      // W&B strips template variables from the spec and sends them beside it.
      const fromSpec = spec.template_variables;
      delete spec.template_variables;
      const templateVariables =
        request.templateVariables ?? (fromSpec && typeof fromSpec === 'object' ? (fromSpec as Record<string, string | number>) : undefined);
      const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
      // W&B falls back to the key's default entity when none is configured.
      const entity = request.entity ?? str(spec.queue_entity) ?? settings.entity ?? str(spec.entity) ?? (await wandb.viewer())?.entity ?? undefined;
      if (!entity) {
        throw new LaunchError({
          code: 'wandb.no_entity',
          message: `no entity for queue ${request.queue}`,
          hint: 'set `entity` in the config, pass --entity, or set WANDB_ENTITY',
        });
      }
      const priority = priorityValue(request.priority);
      const pushed = await wandb.pushToRunQueueByName({
        entity,
        project,
        queue: request.queue,
        runSpec: spec,
        ...(priority === undefined ? {} : { priority }),
        ...(templateVariables ? { templateVariableValues: templateVariables } : {}),
      });
      return { id: pushed.id, queue: request.queue, entity, runSpec: pushed.runSpec };
    },
    async close() {
      if (owned) await wandb.close();
    },
  };
}

/** One-shot enqueue: creates a client, pushes, closes. */
export async function enqueueToWandb(options: WandbEnqueueOptions & WandbEnqueueRequest): Promise<WandbEnqueueResult> {
  const { queue, spec, priority, templateVariables, validate, ...clientOptions } = options;
  const c = createWandbEnqueueClient(clientOptions);
  try {
    return await c.enqueue({
      queue,
      spec,
      ...(priority === undefined ? {} : { priority }),
      ...(templateVariables ? { templateVariables } : {}),
      ...(validate === undefined ? {} : { validate }),
      ...(clientOptions.entity ? { entity: clientOptions.entity } : {}),
    });
  } finally {
    await c.close();
  }
}
