import type { Options } from 'tsup';

/**
 * The build every package shares: ESM and CommonJS with declarations for both, source maps, Node 20.
 * A package's `tsup.config.ts` passes its entries (and any `external` or output differences) to
 * {@link packageConfig}; everything else comes from here so the packages build alike.
 */
export const baseOptions = {
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // tsup runs in the package's folder; every package sits two levels below the root.
  tsconfig: '../../tsconfig.base.json',
} satisfies Options;

/** The shared options with a package's own on top (a package's value replaces the shared one). */
export function packageConfig(options: Options & Pick<Required<Options>, 'entry'>): Options {
  return { ...baseOptions, ...options };
}
