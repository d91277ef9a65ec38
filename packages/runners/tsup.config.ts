import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.base.js';

export default defineConfig(
  packageConfig({
    // Subpath entries let the binary load only the backends it uses (the Kubernetes client alone is ~70 MiB of RSS).
    entry: {
      index: 'src/index.ts',
      'local-process': 'src/local-process/index.ts',
      kubernetes: 'src/kubernetes/index.ts',
      'local-container': 'src/local-container/index.ts',
    },
  }),
);
