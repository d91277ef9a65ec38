#!/usr/bin/env node
// Packs every public package the way `pnpm publish` would (`workspace:*` ranges replaced, `files`
// applied) and checks each tarball with publint (package.json against the files in the tarball) and
// Are the Types Wrong (the declarations each `exports` condition resolves to, for node16 ESM/CJS and
// bundler resolution). Run after `pnpm build`: the tarballs hold dist/. Needs no network.
//
// Usage: node scripts/check-packages.mjs [package-folder-name ...]   (default: every public package)
// A failure prints each problem; `npx attw <tarball> --profile node16` shows attw's full table.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkPackage, createPackageFromTarballData } from '@arethetypeswrong/core';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// attw's `node16` profile: node10 resolution cannot see `exports` subpaths, and engines is Node >= 20.
const IGNORED_RESOLUTIONS = new Set(['node10']);

// `pnpm run` sets npm_execpath to pnpm's own entry; outside pnpm use the pinned pnpm through npx.
const execPath = process.env.npm_execpath;
const pnpm = execPath && /pnpm/.test(execPath) ? [process.execPath, execPath] : ['npx', '-y', 'pnpm@10'];

const only = process.argv.slice(2);
const packages = readdirSync(join(root, 'packages'))
  .map((folder) => ({ folder, dir: join(root, 'packages', folder) }))
  .filter(({ dir }) => existsSync(join(dir, 'package.json')))
  .map((p) => ({ ...p, manifest: JSON.parse(readFileSync(join(p.dir, 'package.json'), 'utf8')) }))
  .filter(({ manifest }) => manifest.private !== true)
  .filter(({ folder }) => only.length === 0 || only.includes(folder));

if (packages.length === 0) {
  console.error(`check-packages: no public package matches ${only.join(', ') || '(none found)'}`);
  process.exit(2);
}
const unbuilt = packages.filter(({ dir }) => !existsSync(join(dir, 'dist')));
if (unbuilt.length > 0) {
  console.error(`check-packages: no dist/ in ${unbuilt.map((p) => p.manifest.name).join(', ')}: run \`pnpm build\` first`);
  process.exit(2);
}

const started = performance.now();
const out = mkdtempSync(join(tmpdir(), 'launch-pack-'));
let failed = 0;
try {
  // One pnpm process packs them all (a pnpm start-up costs seconds on a loaded machine).
  const filters = packages.flatMap(({ manifest }) => ['--filter', manifest.name]);
  try {
    execFileSync(pnpm[0], [...pnpm.slice(1), '-r', ...filters, 'pack', '--pack-destination', out], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    // pnpm prints its errors on stdout.
    throw new Error(`pnpm pack failed (exit ${error.status}):\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  }
  const packedMs = Math.round(performance.now() - started);

  for (const { folder, manifest } of packages) {
    const t0 = performance.now();
    const tarPath = join(out, `${manifest.name.replace(/^@/, '').replace('/', '-')}-${manifest.version}.tgz`);
    if (!existsSync(tarPath)) throw new Error(`pnpm pack left no ${tarPath} for ${manifest.name}`);
    const data = readFileSync(tarPath);
    const problems = [];
    // npm shows a package's own LICENSE file; each public package carries a copy of the root one.
    const license = join(root, 'packages', folder, 'LICENSE');
    if (!existsSync(license) || readFileSync(license, 'utf8') !== readFileSync(join(root, 'LICENSE'), 'utf8')) {
      problems.push(`packages/${folder}/LICENSE is missing or differs from the root LICENSE (copy it)`);
    }

    const { messages, pkg } = await publint({
      pack: { tarball: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) },
      level: 'suggestion',
      strict: true,
    });
    for (const m of messages) problems.push(`publint ${m.type}: ${formatMessage(m, pkg, { color: false }) ?? m.code}`);

    const analysis = await checkPackage(createPackageFromTarballData(new Uint8Array(data)));
    if (!analysis.types) {
      problems.push('attw: the package ships no types');
    } else {
      for (const p of analysis.problems) {
        if ('resolutionKind' in p && IGNORED_RESOLUTIONS.has(p.resolutionKind)) continue;
        const where = [p.entrypoint, p.resolutionKind, p.fileName ?? p.typesFileName].filter(Boolean).join(' ');
        problems.push(`attw ${p.kind}${where ? ` (${where})` : ''}`);
      }
    }

    const ms = Math.round(performance.now() - t0);
    if (problems.length > 0) {
      failed++;
      console.error(`✗ ${manifest.name} (${ms} ms)\n    ${problems.join('\n    ')}`);
    } else {
      console.log(`✓ ${manifest.name}: publint and attw clean (${ms} ms)`);
    }
  }
  console.log(`check-packages: packed in ${packedMs} ms`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
const total = Math.round(performance.now() - started);
if (failed > 0) {
  console.error(`check-packages: ${failed} of ${packages.length} packages have problems (${total} ms)`);
  process.exit(1);
}
console.log(`check-packages: ${packages.length} packages clean (${total} ms)`);
