/**
 * `--help` generated from a command's option table: the usage lines, a description, then every row under
 * its group heading with its short flag, metavar, help line, default and variable. Nothing is hand-kept,
 * so a flag cannot exist without its help line, nor a help line without its flag (issue 13).
 */
import type { OptionRow, OptionTable, Rows } from './options.js';

export interface HelpSpec<O extends Rows> {
  usage: readonly string[];
  description: string;
  options: OptionTable<O>;
  /** Text after the options (exit codes, examples). */
  footer?: string;
}

const FLAG_COLUMN = 33;
const WIDTH = 108;

export function renderHelp<O extends Rows>(spec: HelpSpec<O>): string {
  const out: string[] = [];
  spec.usage.forEach((u, i) => {
    out.push(`${i === 0 ? 'Usage: ' : '       '}${u}`);
  });
  out.push('', spec.description.trimEnd(), ...optionLines(spec.options));
  if (spec.footer) out.push('', spec.footer.trimEnd());
  return `${out.join('\n')}\n`;
}

/** The table's rows under their group headings (each group after an empty line). */
export function optionLines<O extends Rows>(options: OptionTable<O>, defaultGroup = 'Options'): string[] {
  const groups = new Map<string, [string, OptionRow][]>();
  for (const [name, row] of Object.entries(options.rows) as [string, OptionRow][]) {
    const group = row.group ?? defaultGroup;
    groups.set(group, [...(groups.get(group) ?? []), [name, row]]);
  }
  const out: string[] = [];
  for (const [group, rows] of groups) {
    out.push('', group);
    for (const [name, row] of rows) out.push(...renderRow(name, row));
  }
  return out;
}

function renderRow(name: string, row: OptionRow): string[] {
  const names = [`--${name}`, ...(row.aliases ?? []).map((a) => `--${a}`)].join(', ');
  const flag = `${row.short ? `-${row.short}, ` : '    '}${names}${row.kind.metavar ? ` ${row.kind.metavar}` : ''}`;
  const facts: string[] = [];
  const shown = defaultShown(row);
  if (shown !== undefined) facts.push(`default ${shown}`);
  if (row.multiple) facts.push('repeatable');
  if (row.env) facts.push(`env ${row.env}${row.multiple ? ' (comma-separated)' : ''}`);
  const lines = [row.help, ...(row.more ?? []), ...(facts.length > 0 ? [facts.join('; ')] : [])].flatMap(
    wrap,
  );
  const pad = ' '.repeat(FLAG_COLUMN);
  const head = `  ${flag}`;
  const out: string[] = [];
  if (head.length < FLAG_COLUMN - 1) out.push(`${head.padEnd(FLAG_COLUMN)}${lines[0] ?? ''}`);
  else out.push(head, `${pad}${lines[0] ?? ''}`);
  for (const l of lines.slice(1)) out.push(`${pad}${l}`);
  return out;
}

function defaultShown(row: OptionRow): string | undefined {
  if (row.defaultText !== undefined) return row.defaultText;
  if (row.default === undefined || row.kind.boolean) return undefined;
  if (Array.isArray(row.default)) return row.default.length > 0 ? row.default.join(',') : undefined;
  return row.kind.show ? row.kind.show(row.default) : String(row.default);
}

function wrap(text: string): string[] {
  const room = WIDTH - FLAG_COLUMN;
  const words = text.split(' ');
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && line.length + 1 + w.length > room) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines;
}
