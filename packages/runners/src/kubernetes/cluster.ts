import { CoreV1Api, CustomObjectsApi, KubeConfig, Watch } from '@kubernetes/client-node';
import { LaunchError } from '@launch/core';

/** API clients for one cluster (one kube config file and context). */
export interface Cluster {
  /** Identity of the config: runs with the same key share clients and watches. */
  readonly key: string;
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  readonly watch: Watch;
  /** The current context's namespace, W&B's fourth choice. */
  readonly contextNamespace: string | undefined;
}

/**
 * Loads a kube config: an explicit file (`resource_args.configFile` or the runner's `kubeconfigPath`), else
 * `$KUBECONFIG`, `~/.kube/config` or the in-cluster service account; then selects `context` when given.
 */
export function loadCluster(configFile: string | undefined, context: string | undefined): Cluster {
  const kc = new KubeConfig();
  try {
    if (configFile) kc.loadFromFile(configFile);
    else kc.loadFromDefault();
  } catch (error) {
    throw new LaunchError({
      code: 'run.kubeconfig',
      stage: 'run',
      message: `cannot load the kube config${configFile ? ` "${configFile}"` : ''}: ${error instanceof Error ? error.message : String(error)}`,
      hint: "set resource_args.kubernetes.configFile or the runner's kubeconfigPath to a valid kube config, or run the agent in a cluster",
      cause: error,
    });
  }
  if (context) {
    if (!kc.getContextObject(context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new LaunchError({
        code: 'run.kubeconfig',
        stage: 'run',
        message: `the kube config has no context "${context}" (it has: ${known.join(', ') || 'none'})`,
        hint: 'set resource_args.kubernetes.context to one of the contexts listed',
      });
    }
    kc.setCurrentContext(context);
  }
  if (!kc.getCurrentCluster()) {
    throw new LaunchError({
      code: 'run.kubeconfig',
      stage: 'run',
      message: 'the kube config has no current cluster',
      hint: 'select a context with a cluster (resource_args.kubernetes.context) or fix the kube config',
    });
  }
  return {
    key: `${configFile ?? '(default)'}#${kc.getCurrentContext()}`,
    kc,
    core: kc.makeApiClient(CoreV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    watch: new Watch(kc),
    contextNamespace: kc.getContextObject(kc.getCurrentContext())?.namespace,
  };
}
