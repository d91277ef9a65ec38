import { defineConfig } from 'tsup';

export default defineConfig({
  // Subpath entries let the binary load only the backends it uses (the Kubernetes client alone is ~70 MiB of RSS).
  entry: { index: 'src/index.ts', 'local-process': 'src/local-process/index.ts', kubernetes: 'src/kubernetes/index.ts', 'local-container': 'src/local-container/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  tsconfig: '../../tsconfig.base.json',
});
