/**
 * Formats rows as an aligned text table: the first row is the header, the first column is left
 * aligned and the others right aligned (numbers).
 */
export function formatTable(rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = cells[0]?.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length))) ?? [];
  const line = (r: string[]) =>
    r
      .map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!)))
      .join('  ')
      .trimEnd();
  const [header, ...body] = cells;
  if (!header) return '';
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** `met` / `NOT met` for a figure against its target. */
export function verdict(met: boolean): string {
  return met ? 'met' : 'NOT met';
}
