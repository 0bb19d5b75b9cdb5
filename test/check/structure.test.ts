/**
 * The shape of src/ (issue 13's "done when"), checked on every run: no function longer than 80 lines
 * without its reason in a comment, no import circles, dependencies that point one way, the clock injected
 * in src/mqtt, and only src/bin exiting the process.
 *
 *   npx vitest run test/check        # the checks
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { importCycles, importsOf, LONG_REASON, longFunctions, SRC, sourceFiles } from './source-scan.js';

const files = sourceFiles();
const rel = (f: string) => path.relative('.', f);

/** Calls of `name(...)` as a bare identifier (not `clock.setTimeout`), by file. */
function bareCalls(file: string, names: readonly string[]): string[] {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isCallExpression(node)) {
      const e = node.expression;
      if (ts.isIdentifier(e) && names.includes(e.text)) found.push(e.text);
      if (
        ts.isPropertyAccessExpression(e) &&
        e.expression.getText(source) === 'process' &&
        names.includes(`process.${e.name.text}`)
      )
        found.push(`process.${e.name.text}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('src/', () => {
  it(`has no function longer than 80 lines without a comment saying it is "${LONG_REASON} ..."`, () => {
    const long = files.flatMap(longFunctions);
    const unexplained = long
      .filter((f) => !f.reason)
      .map((f) => `${f.file}:${f.line} ${f.name} (${f.lines} lines)`);
    expect(unexplained).toEqual([]);
  });

  it('has no import circles', () => {
    expect(importCycles(files)).toEqual([]);
  });

  it('dependencies point one way: src/mqtt never imports its consumers, low layers never import the agent', () => {
    const wrong: string[] = [];
    const rules: [string, string[]][] = [
      ['mqtt', ['fleet', 'agent', 'commands', 'cli']],
      ['usb', ['agent', 'mqtt', 'session', 'fleet', 'commands']],
      ['session', ['agent', 'mqtt', 'fleet', 'commands', 'usb/sources']],
      ['relay', ['agent', 'commands']],
      ['doctor', ['agent', 'commands', 'mqtt']],
    ];
    for (const file of files) {
      const layer = path.relative(SRC, file);
      for (const [from, never] of rules) {
        if (!layer.startsWith(`${from}/`)) continue;
        for (const imported of importsOf(file)) {
          const target = path.relative(SRC, imported);
          if (never.some((n) => target.startsWith(`${n}/`))) wrong.push(`${rel(file)} -> ${target}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('src/mqtt waits only on the injected clock (no global setTimeout, setInterval, setImmediate)', () => {
    const mqtt = files.filter((f) => f.startsWith(path.join(SRC, 'mqtt')));
    const used = mqtt.flatMap((f) =>
      bareCalls(f, ['setTimeout', 'setInterval', 'setImmediate']).map((c) => `${rel(f)}: ${c}`),
    );
    expect(used).toEqual([]);
  });

  it('only src/bin exits the process', () => {
    const exits = files
      .filter((f) => !f.startsWith(path.join(SRC, 'bin')))
      .flatMap((f) => bareCalls(f, ['process.exit', 'process.abort']).map((c) => `${rel(f)}: ${c}`));
    expect(exits).toEqual([]);
  });
});

describe('the checks themselves', () => {
  it('find a long function, a circle and a global timer in code made for them', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const dir = await mkdtemp(path.join((await import('node:os')).tmpdir(), 'replug-check-'));
    try {
      const body = Array.from({ length: 85 }, (_, i) => `  const v${i} = ${i};`).join('\n');
      await writeFile(
        path.join(dir, 'a.ts'),
        `import './b.js';\nexport function big() {\n${body}\n}\nsetTimeout(() => {}, 1);\n`,
      );
      await writeFile(
        path.join(dir, 'b.ts'),
        `import './a.js';\n// ${LONG_REASON} it is a table\nexport function ok() {\n${body}\n}\n`,
      );
      const a = path.join(dir, 'a.ts');
      const b = path.join(dir, 'b.ts');
      expect(longFunctions(a).map((f) => [f.name, f.reason])).toEqual([['big', undefined]]);
      expect(longFunctions(b)[0]?.reason).toContain(LONG_REASON);
      expect(importCycles([a, b])).toHaveLength(1);
      expect(bareCalls(a, ['setTimeout'])).toEqual(['setTimeout']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
