import { escapeControl } from '../errors.js';

/** Widest a column is padded to; a longer cell overflows its column instead of widening every row. */
const MAX_COLUMN_WIDTH = 120;

/**
 * The lines of a plain-text table with right-aligned numeric columns, for terminal summaries.
 * Cells are escaped (tensor names come from the input files).
 */
export function textTableLines(header: string[], rows: (string | number)[][], rightAlign: boolean[] = []): string[] {
  const cells = rows.map((r) => r.map((c) => escapeControl(String(c))));
  // A loop, not Math.max(...cells): a spread of a million rows overflows the stack.
  const widths = header.map((h) => Math.min(h.length, MAX_COLUMN_WIDTH));
  for (const r of cells) {
    for (let i = 0; i < widths.length; i++) {
      const len = (r[i] ?? '').length;
      if (len > widths[i]! && len <= MAX_COLUMN_WIDTH) widths[i] = len;
    }
  }
  const fmt = (r: string[]) => r.map((c, i) => (rightAlign[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(fmt)];
}

/** textTableLines joined into one string. */
export function textTable(header: string[], rows: (string | number)[][], rightAlign: boolean[] = []): string {
  return textTableLines(header, rows, rightAlign).join('\n');
}
