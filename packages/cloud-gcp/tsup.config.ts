import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  tsconfig: '../../tsconfig.base.json',
  // The Google Cloud libraries are loaded with import() when a factory is first used; keep them out of the bundle.
  external: [/^@google-cloud\//, /^google-auth-library/, /^gaxios/, /^gcp-metadata/],
});
