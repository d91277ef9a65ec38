import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const pkg = fileURLToPath(new URL('..', import.meta.url));

/** Which heavy clients a fresh Node process has loaded after requiring one built entry of this package. */
function loadedBy(entry: string): string[] {
  const script = [
    `require(${JSON.stringify(entry)});`,
    "const heavy = Object.keys(require.cache).flatMap((k) => (/@kubernetes[\\\\/]client-node/.test(k) ? ['client-node'] : /[\\\\/]dockerode[\\\\/]/.test(k) ? ['dockerode'] : []));",
    'console.log(JSON.stringify(heavy));',
  ].join('\n');
  return [...new Set(JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: pkg, encoding: 'utf8' })) as string[])];
}

it('the root entry loads neither the Kubernetes client nor dockerode; the subpaths load only their own', () => {
  // The built package (pnpm test builds first); its CommonJS entries show every module loaded in require.cache.
  expect(existsSync(`${pkg}/dist/index.cjs`), 'build the package first (pnpm build)').toBe(true);
  expect(loadedBy('./dist/index.cjs')).toEqual([]);
  expect(loadedBy('./dist/local-process.cjs')).toEqual([]);
  expect(loadedBy('./dist/kubernetes.cjs')).toEqual(['client-node']);
  // The container runner loads dockerode on its first run, not on import.
  expect(loadedBy('./dist/local-container.cjs')).toEqual([]);
});
