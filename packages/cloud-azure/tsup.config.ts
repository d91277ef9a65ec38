import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  tsconfig: '../../tsconfig.base.json',
  // The Azure SDK is loaded with import() when a factory is first used; keep it out of the bundle.
  external: [/^@azure\//],
});
