import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.base.js';

export default defineConfig(
  packageConfig({
    entry: ['src/index.ts'],
    // The Azure SDK is loaded with import() when a factory is first used; keep it out of the bundle.
    external: [/^@azure\//],
  }),
);
