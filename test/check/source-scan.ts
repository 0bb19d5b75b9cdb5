/**
 * Static checks over src/ with the TypeScript parser: function lengths and import cycles. Run them with
 * `npx vitest run test/check` (structure.test.ts), or print the long functions with
 * `node --experimental-strip-types test/check/long-functions.mts`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export const SRC = path.resolve('src');
export const MAX_FUNCTION_LINES = 80;
/** A function longer than MAX_FUNCTION_LINES says why in a comment just above it that contains this. */
export const LONG_REASON = 'longer than 80 lines because';

export function sourceFiles(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.ts$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

export interface LongFunction {
  file: string;
  name: string;
  line: number;
  lines: number;
  reason: string | undefined;
}

function nameOf(node: ts.Node): string {
  const n = (node as { name?: ts.Node }).name;
  if (n && ts.isIdentifier(n)) return n.text;
  if (n && ts.isPropertyName(n)) return n.getText();
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText();
  return '(anonymous)';
}

/** Every function, method or arrow function in `file` longer than MAX_FUNCTION_LINES. */
export function longFunctions(file: string): LongFunction[] {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const out: LongFunction[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && (node as { body?: ts.Node }).body) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      if (lines > MAX_FUNCTION_LINES) {
        // The comment may sit on the function or on the statement that holds it (export const x = ...).
        let holder: ts.Node = node;
        while (
          holder.parent &&
          !ts.isSourceFile(holder.parent) &&
          !ts.isBlock(holder.parent) &&
          !ts.isClassLike(holder.parent)
        )
          holder = holder.parent;
        const comments = ts.getLeadingCommentRanges(text, holder.getFullStart()) ?? [];
        const reason = comments.map((c) => text.slice(c.pos, c.end)).find((c) => c.includes(LONG_REASON));
        out.push({ file: path.relative('.', file), name: nameOf(node), line: start + 1, lines, reason });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** Relative imports of `file` (static, re-exports and dynamic), as .ts paths. */
export function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isStringLiteral(node) && node.text.startsWith('.')) {
      const p = node.parent;
      const isModule = (ts.isImportDeclaration(p) || ts.isExportDeclaration(p)) && p.moduleSpecifier === node;
      const isDynamic = ts.isCallExpression(p) && p.expression.kind === ts.SyntaxKind.ImportKeyword;
      if (isModule || isDynamic)
        out.push(path.resolve(path.dirname(file), node.text).replace(/\.js$/, '.ts'));
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** Import cycles among `files`, each as the list of files in it (Tarjan's strongly connected components). */
export function importCycles(files: readonly string[]): string[][] {
  const graph = new Map(files.map((f) => [f, importsOf(f).filter((i) => files.includes(i))]));
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const cycles: string[][] = [];
  const strong = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v) as number, idx.get(w) as number));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        on.delete(w);
        comp.push(path.relative('.', w));
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(comp.sort());
    }
  };
  for (const f of files) if (!idx.has(f)) strong(f);
  return cycles;
}
