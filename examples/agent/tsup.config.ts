import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.base.js';

// The binary: one ESM file with a shebang, no declarations.
export default defineConfig(
  packageConfig({
    entry: ['src/cli.ts'],
    format: ['esm'],
    dts: false,
    banner: { js: '#!/usr/bin/env node' },
  }),
);
