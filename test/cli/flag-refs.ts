/**
 * Finds the flags a text or a source tree names, for the option-table walk (option-tables.test.ts): every
 * `--flag` in a help text, a hint, an error message or a string literal of src/ must be one that the command
 * printing it accepts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import type { OptionTable, Rows } from '../../src/cli/options.js';

/**
 * Flags of other programs that replug's messages quote on purpose (docker run, mosquitto_sub, libusb's
 * configure, udevd): they are not replug flags. Each one is named with its program.
 */
export const FOREIGN_FLAGS: Record<string, string> = {
  '--device': 'docker run',
  '--device-cgroup-rule': 'docker run',
  '--privileged': 'docker run',
  '--net': 'docker run',
  '--network': 'docker run',
  '--cap-add': 'docker run',
  '--retained-only': 'mosquitto_sub',
  '--disable-udev': "libusb's configure",
};

/** Stands for a template literal's expressions in scanned text. */
export const EXPR = ['$', '{}'].join('');

const FLAG = /(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*(?![\w$-])/g;

/** Long flags named in `text`; a flag glued to a template expression (`--tls-${what}`) is left out. */
export function flagsIn(text: string): string[] {
  return [...new Set(text.match(FLAG) ?? [])];
}

export type TablesByCommand = Record<string, readonly OptionTable<Rows>[]>;

/**
 * The flags of `text` that none of `tables` accepts (foreign flags aside). A quoted command line of another
 * replug command (`` `replug watch --compare` ``) is checked against that command's tables instead; text in
 * quotes ('--x', "--x") is a user's input echoed back, not a flag we name.
 */
export function unknownFlags(
  tables: readonly OptionTable<Rows>[],
  text: string,
  others: TablesByCommand = {},
): string[] {
  const wrong: string[] = [];
  const own = text.replace(/`replug ([a-z]+)([^`]*)`/g, (_m, command: string, rest: string) => {
    const theirs = others[command];
    if (!theirs) wrong.push(`replug ${command}`);
    else wrong.push(...unknownFlags(theirs, rest));
    return '';
  });
  const unquoted = own.replace(/'[^'\n]*'|"[^"\n]*"/g, '');
  wrong.push(
    ...flagsIn(unquoted).filter((flag) => !(flag in FOREIGN_FLAGS) && !tables.some((t) => accepts(t, flag))),
  );
  return wrong;
}

/** True when the table's own tokenizer takes `flag` (with a value if it needs one). */
export function accepts(table: OptionTable<Rows>, flag: string): boolean {
  const { problems } = table.read([flag, 'x'], { env: {}, cwd: '/' }, true);
  return !problems.some((p) => p.startsWith('Unknown option'));
}

/** String literals and template texts of one TypeScript file (expressions as ${}), and its relative imports. */
export function scanSource(file: string): { literals: string[]; imports: string[] } {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const literals: string[] = [];
  const imports: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) {
      const parent = node.parent;
      const isModule =
        (ts.isImportDeclaration(parent) || ts.isExportDeclaration(parent)) && parent.moduleSpecifier === node;
      const isDynamic = ts.isCallExpression(parent) && parent.expression.kind === ts.SyntaxKind.ImportKeyword;
      if (isModule || isDynamic) {
        if (node.text.startsWith('.')) imports.push(path.resolve(path.dirname(file), node.text));
      } else literals.push(node.text);
    } else if (ts.isTemplateExpression(node)) {
      literals.push(node.head.text + node.templateSpans.map((s) => EXPR + s.literal.text).join(''));
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { literals, imports: imports.map((i) => i.replace(/\.js$/, '.ts')) };
}

/** Every file reachable from `root` through relative imports (static and dynamic), the root included. */
export function reachable(root: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const todo = [root];
  while (todo.length > 0) {
    const file = todo.pop() as string;
    if (out.has(file)) continue;
    const { literals, imports } = scanSource(file);
    out.set(file, literals);
    todo.push(...imports.filter((i) => !out.has(i)));
  }
  return out;
}
