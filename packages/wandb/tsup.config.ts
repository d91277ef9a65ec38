import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.base.js';

export default defineConfig(
  packageConfig({
    // `@launch/wandb/settings` lets the binary read W&B settings without loading the GraphQL client.
    entry: { index: 'src/index.ts', settings: 'src/settings-entry.ts' },
  }),
);
