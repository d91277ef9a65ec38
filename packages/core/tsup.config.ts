import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.base.js';

export default defineConfig(
  packageConfig({
    entry: { index: 'src/index.ts', internal: 'src/internal.ts' },
    // Both entries share chunks in CommonJS too, so `@launch/core` and `@launch/core/internal` see one LaunchError class.
    splitting: true,
  }),
);
