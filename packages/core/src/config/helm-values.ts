import type { ValidationIssue } from '../errors.js';

/**
 * Top-level keys of the launch-agent Helm chart's values (W&B's chart and ours). None of them is an
 * agent config key, so a file that has `launchConfig`, or `agent` with other chart keys, is a values
 * file given where the agent config belongs.
 */
export const HELM_VALUES_KEYS: ReadonlySet<string> = new Set([
  'agent',
  'launchConfig',
  'namespace',
  'additionalTargetNamespaces',
  'baseUrl',
  'volcano',
  'gitCreds',
  'sshAuthSecrets',
  'serviceAccount',
  'azureStorageAccessKey',
  'additionalEnvVars',
  'additionalSecretEnvVars',
  'customCABundle',
  'kanikoPvcName',
  'kanikoDockerConfigSecret',
  'health',
  'metrics',
  'rbac',
]);

/** Whether a parsed document is a Helm values file of the launch-agent chart. */
export function isHelmValues(raw: Record<string, unknown>): boolean {
  if ('launchConfig' in raw) return true;
  const agent = raw['agent'];
  if (typeof agent !== 'object' || agent === null || Array.isArray(agent)) return false;
  return Object.keys(raw).some((k) => k !== 'agent' && HELM_VALUES_KEYS.has(k));
}

/** The one issue for a values file given as the agent config. */
export function helmValuesIssue(raw: Record<string, unknown>): ValidationIssue {
  const keys = Object.keys(raw)
    .filter((k) => HELM_VALUES_KEYS.has(k))
    .slice(0, 4);
  const inline = typeof raw['launchConfig'] === 'string';
  return {
    path: '',
    expected: 'an agent config (launch-config.yaml)',
    found: `a Helm values file (${keys.join(', ')})`,
    message:
      `expected an agent config, found a Helm values file of the launch-agent chart (top-level ${keys.join(', ')}): ` +
      (inline
        ? 'the agent config is the text under launchConfig; save it to a file and pass that, or check it in place with `launch-agent config check --from-values FILE`'
        : 'the agent config is what launchConfig holds (the chart wants it as a string: launchConfig: |); pass that instead'),
  };
}
