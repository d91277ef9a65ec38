import type { Api } from './api.js';
import type { ResourceInfo } from './resources.js';

export interface CustomControllerOptions {
  api: Api;
  pods: ResourceInfo;
  jobs: ResourceInfo;
  stepDelayMs: number;
}

/** Controllers for the canned custom kinds (filled in below). */
export function startCustomControllers(_options: CustomControllerOptions): () => void {
  return () => undefined;
}
