import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const src = (pkg: string) => here(`./packages/${pkg}/src/index.ts`);

export default defineConfig({
  resolve: {
    // Subpath entries first: a bare package alias would otherwise swallow `@launch/runners/kubernetes`.
    alias: [
      { find: /^@launch\/core\/internal$/, replacement: here('./packages/core/src/internal.ts') },
      { find: /^@launch\/runners\/local-process$/, replacement: here('./packages/runners/src/local-process/index.ts') },
      { find: /^@launch\/runners\/kubernetes$/, replacement: here('./packages/runners/src/kubernetes/index.ts') },
      { find: /^@launch\/runners\/local-container$/, replacement: here('./packages/runners/src/local-container/index.ts') },
      { find: /^@launch\/wandb\/settings$/, replacement: here('./packages/wandb/src/settings-entry.ts') },
      ...['core', 'runners', 'builders', 'registries', 'wandb', 'testkit', 'cloud-aws', 'cloud-gcp', 'cloud-azure'].map((pkg) => ({
        find: new RegExp(`^@launch/${pkg}$`),
        replacement: src(pkg),
      })),
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'examples/*/src/**/*.test.ts', 'examples/*/test/**/*.test.ts', 'charts/*/test/**/*.test.ts'],
    // Starts the real daemons tests share (Docker engine, OCI registries) when their binaries are installed.
    globalSetup: ['./packages/testkit/src/services/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
