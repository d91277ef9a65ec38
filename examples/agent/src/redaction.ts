import { Redactor, isSecretEnvName, type LaunchSpec } from '@launch/core';

/** A redactor that knows the API key and every secret-looking variable of the agent's environment. */
export function cliRedactor(env: Record<string, string | undefined>, apiKey?: string | null): Redactor {
  const r = new Redactor();
  r.add(apiKey);
  for (const [name, value] of Object.entries(env)) if (isSecretEnvName(name)) r.add(value);
  return r;
}

/** Registers the secrets an item carries (`_wandb_api_key`, secret-looking `env` values) before anything prints. */
export function learnSpecSecrets(redactor: Redactor, spec: unknown): void {
  if (!spec || typeof spec !== 'object') return;
  const s = spec as Partial<LaunchSpec>;
  if (typeof s._wandb_api_key === 'string') redactor.add(s._wandb_api_key);
  if (s.env && typeof s.env === 'object') {
    for (const [name, value] of Object.entries(s.env)) if (isSecretEnvName(name) && typeof value === 'string') redactor.add(value);
  }
}
