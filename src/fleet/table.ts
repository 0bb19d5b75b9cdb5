/**
 * A tiny column fitter and ANSI styling for the watch views (no dependency: the escapes are few). Widths
 * are computed on plain text and colour is applied after padding, so escape codes never count as columns.
 * On a narrow terminal whole columns are dropped by priority (least important first) before anything is
 * truncated, because a cut-off column is harder to read than a missing one.
 */

export type Style = 'green' | 'red' | 'yellow' | 'dim' | 'bold' | 'cyan';

const CODES: Record<Style, string> = {
  green: '\x1b[32m',
  red: '\x1b[31m',
  yellow: '\x1b[33m',
  dim: '\x1b[2m',
  bold: '\x1b[1m',
  cyan: '\x1b[36m',
};
const RESET = '\x1b[0m';

export function paint(text: string, style: Style | undefined, color: boolean): string {
  return color && style && text ? `${CODES[style]}${text}${RESET}` : text;
}

/**
 * Text that came from a payload or a broker, made safe to print (issue 12): C0, DEL and C1 controls
 * (ESC, CSI, OSC, BEL, CR, backspace) and the bidirectional overrides that can reorder what a terminal
 * shows (Trojan Source, CVE-2021-42574) become `?`. Applied to every cell and heading the views print.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: replacing them is the point.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function printable(text: string): string {
  return text.replace(UNSAFE, '?');
}

export interface Cell {
  text: string;
  style?: Style;
}

export interface Column {
  header: string;
  /** 1 = always shown; larger numbers are dropped first when the terminal is narrow. */
  priority: number;
  max?: number;
  align?: 'left' | 'right';
  /** May shrink (with an ellipsis) down to `min` once droppable columns are gone. */
  min?: number;
}

const GAP = 2;

/** Cuts text to `width` display columns (one per code unit: agent payloads are mostly ASCII), with `…`. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  return width === 1 ? '…' : `${text.slice(0, width - 1)}…`;
}

/** Visible length of a string that may hold our own SGR escapes. */
export function visibleLength(text: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching the escapes we emit.
  return text.replace(/\x1b\[[0-9;]*m/g, '').length;
}

export function layoutTable(
  rawColumns: readonly Column[],
  rawRows: readonly Cell[][],
  width: number,
  color: boolean,
  indent = 0,
): string[] {
  const columns = rawColumns.map((c) => ({ ...c, header: printable(c.header) }));
  const rows = rawRows.map((r) => r.map((c) => ({ ...c, text: printable(c.text) })));
  const natural = columns.map((c, i) =>
    Math.min(
      c.max ?? Number.POSITIVE_INFINITY,
      Math.max(c.header.length, ...rows.map((r) => r[i]?.text.length ?? 0)),
    ),
  );
  let shown = columns.map((_, i) => i).filter((i) => natural[i]! > 0 || columns[i]!.priority === 1);
  const total = (idx: number[], w: number[]) =>
    indent + idx.reduce((s, i) => s + w[i]!, 0) + GAP * (idx.length - 1);
  const widths = [...natural];
  while (total(shown, widths) > width) {
    const worst = Math.max(...shown.map((i) => columns[i]!.priority));
    if (worst === 1) break;
    // A shrinkable column of the lowest priority gives up width before anything is dropped whole.
    const squeeze = shown.find(
      (i) => columns[i]!.priority === worst && widths[i]! > (columns[i]!.min ?? widths[i]!),
    );
    if (squeeze !== undefined) {
      widths[squeeze] = Math.max(columns[squeeze]!.min!, widths[squeeze]! - (total(shown, widths) - width));
      continue;
    }
    const drop = shown.filter((i) => columns[i]!.priority === worst).pop()!;
    shown = shown.filter((i) => i !== drop);
  }
  // Still too wide: shrink the shrinkable columns, widest first, down to their minimum.
  for (let excess = total(shown, widths) - width; excess > 0; ) {
    const candidates = shown.filter((i) => columns[i]!.min !== undefined && widths[i]! > columns[i]!.min!);
    if (candidates.length === 0) break;
    const i = candidates.reduce((a, b) => (widths[b]! > widths[a]! ? b : a));
    const cut = Math.min(excess, widths[i]! - columns[i]!.min!);
    widths[i]! -= cut;
    excess -= cut;
  }
  const line = (cells: (Cell | undefined)[], header: boolean) => {
    const parts = shown.map((i, n) => {
      const c = columns[i]!;
      const text = truncate(cells[i]?.text ?? '', widths[i]!);
      const last = n === shown.length - 1;
      const padded = c.align === 'right' ? text.padStart(widths[i]!) : last ? text : text.padEnd(widths[i]!);
      const style = header ? 'dim' : cells[i]?.style;
      if (!color || !style || text.length === 0) return padded;
      // Colour only the text, never the padding, so underlines and backgrounds would not smear.
      return padded.replace(text, paint(text, style, color));
    });
    const out = ' '.repeat(indent) + parts.join(' '.repeat(GAP)).trimEnd();
    return visibleLength(out) > width ? truncate(stripAnsi(out), width) : out;
  };
  return [
    line(
      columns.map((c) => ({ text: c.header })),
      true,
    ),
    ...rows.map((r) => line(r, false)),
  ];
}

export function stripAnsi(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching the escapes we emit.
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}

/** A whole line cut to the terminal width, colour kept only when it fits untouched. */
export function fitLine(text: string, width: number): string {
  return visibleLength(text) > width ? truncate(stripAnsi(text), width) : text;
}
