import { Redactor, isSecretEnvName } from '@launch/core';

/** A redactor that knows the API key and every secret-looking variable of the agent's environment. */
export function cliRedactor(env: Record<string, string | undefined>, apiKey?: string | null): Redactor {
  const r = new Redactor();
  r.add(apiKey);
  for (const [name, value] of Object.entries(env)) if (isSecretEnvName(name)) r.add(value);
  return r;
}
