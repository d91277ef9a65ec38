import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.base.js';

export default defineConfig(
  packageConfig({
    entry: ['src/index.ts'],
    // The conformance suites register tests with the caller's vitest; a bundled copy would register nowhere.
    external: ['vitest'],
  }),
);
