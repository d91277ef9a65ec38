import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.base.js';

export default defineConfig(
  packageConfig({
    entry: ['src/index.ts'],
    // The Google Cloud libraries are loaded with import() when a factory is first used; keep them out of the bundle.
    external: [/^@google-cloud\//, /^google-auth-library/, /^gaxios/, /^gcp-metadata/],
  }),
);
