const NUMERIC = /^[-+]?[\d.,]+(\s*[%/a-zA-Z]*)?$|^$/;

/**
 * Formats rows as an aligned text table under a header row and a rule. Columns whose cells are all
 * numbers (optionally with a unit) are right aligned, the others left aligned.
 */
export function formatTable(rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const [header, ...body] = cells;
  if (!header) return '';
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const right = header.map((_, c) => body.length > 0 && body.every((r) => NUMERIC.test(r[c] ?? '')));
  const line = (r: string[]) =>
    widths
      .map((w, c) => (right[c] ? (r[c] ?? '').padStart(w) : (r[c] ?? '').padEnd(w)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** `met` / `NOT met` for a figure against its target. */
export function verdict(met: boolean): string {
  return met ? 'met' : 'NOT met';
}
