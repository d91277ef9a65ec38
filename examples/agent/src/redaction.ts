import { Redactor, isSecretEnvName } from '@launch/core';

/**
 * The binary's redactor: it knows the API key and every secret-looking variable of the agent's
 * environment for its life. The session gives it to `createAgent` (`redactor`), which adds each job's
 * spec secrets in a scope from the claim until the job ends, so every sink hides a running job's
 * secrets and the set stays as small as what runs now.
 */
export function cliRedactor(env: Record<string, string | undefined>, apiKey?: string | null): Redactor {
  const r = new Redactor();
  r.add(apiKey);
  for (const [name, value] of Object.entries(env)) if (isSecretEnvName(name)) r.add(value);
  return r;
}
