/**
 * The walk over every command's option table (issue 13): every flag named in a command's --help, in any
 * hint or error line its parser produces, and in any string of the code that command runs, is a flag that
 * command accepts. Hints used to name flags that did not exist (`--mqtt-username`, `--mqtt-ca`, `--users`
 * on the agent); this walk fails on each of them.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Command } from '../../src/cli/context.js';
import { kinds } from '../../src/cli/kinds.js';
import { commands } from '../../src/cli/main.js';
import { defineOptions, type OptionTable, type Rows } from '../../src/cli/options.js';
import { ConfigError } from '../../src/errors.js';
import { EXPR, FOREIGN_FLAGS, flagsIn, reachable, unknownFlags } from './flag-refs.js';

const loaded: [string, Command][] = await Promise.all(
  Object.entries(commands).map(async ([name, entry]) => [name, await entry.load()] as [string, Command]),
);

const byCommand = Object.fromEntries(loaded.map(([name, c]) => [name, c.tables.map((t) => t.options)]));

/** Lines of help that quote another program's command line (docker run, mosquitto_sub). */
const FOREIGN_LINE = /\b(mosquitto_sub|mosquitto_pub|docker)\b/;

/** Every problem line (and hint) a table can produce: bad values by flag and variable, missing values, relations. */
function problemsOf(table: OptionTable<Rows>): string[] {
  const out: string[] = [];
  const collect = (argv: string[], env: Record<string, string> = {}) => {
    const { problems } = table.read(argv, { env, cwd: '/', fileState: () => 'missing' }, true);
    out.push(...problems);
    if (problems.length > 0) out.push(new ConfigError(problems).hint ?? '');
  };
  for (const [name, row] of Object.entries(table.rows)) {
    const bad = row.kind.boolean ? 'maybe' : '\u0001not-valid';
    if (row.kind.boolean) collect([`--${name}=x`]);
    else {
      collect([`--${name}`, bad]);
      collect([`--${name}`]);
      collect([`--${name}`, '--another']);
    }
    if (row.short) collect([`-${row.short}${row.kind.boolean ? 'Z' : ''}`]);
    if (row.env) collect([], { [row.env]: bad });
    collect(row.kind.boolean ? [`--${name}`] : [`--${name}`, 'x']); // alone: needs / goesWith
    collect([`--${name}x`]); // a near miss: the suggestion
  }
  return out;
}

describe('every command table', () => {
  it.each(loaded)('%s: every flag in --help is accepted by its parser', (_name, command) => {
    const tables = command.tables.map((t) => t.options);
    const text = command.help
      .split('\n')
      .filter((l) => !FOREIGN_LINE.test(l))
      .join('\n');
    expect(flagsIn(text).length).toBeGreaterThan(2);
    expect(unknownFlags(tables, text, byCommand)).toEqual([]);
  });

  it.each(loaded)(
    '%s: every flag in its error lines and hints is accepted by its parser',
    (_name, command) => {
      for (const { options } of command.tables) {
        const problems = problemsOf(options);
        expect(problems.length).toBeGreaterThan(0);
        for (const p of problems) expect(unknownFlags([options], p, byCommand), p).toEqual([]);
      }
    },
  );

  it.each(loaded)('%s: every flag in the strings of the code it runs is accepted by it', (name, command) => {
    const root = path.resolve('src/commands', `${name}.ts`);
    const tables = command.tables.map((t) => t.options);
    const wrong: string[] = [];
    for (const [file, literals] of reachable(root)) {
      for (const literal of literals)
        for (const flag of unknownFlags(tables, literal, byCommand))
          wrong.push(`${path.relative('.', file)}: ${flag}`);
    }
    expect(wrong).toEqual([]);
  });

  it("src/cli/main.ts names only flags some command accepts, and the CLI's own", () => {
    const all = loaded.flatMap(([, c]) => c.tables.map((t) => t.options));
    const global = defineOptions({ version: { kind: kinds.flag(), help: '' } });
    const literals = reachable(path.resolve('src/cli/main.ts')).get(path.resolve('src/cli/main.ts')) ?? [];
    for (const l of literals) expect(unknownFlags([...all, global], l, byCommand), l).toEqual([]);
  });
});

describe('the walk itself', () => {
  const table = defineOptions({ port: { kind: kinds.int(0, 9), help: 'see --port and --bogus' } });

  it('finds a flag the table does not accept, and ignores foreign ones and template expressions', () => {
    expect(unknownFlags([table], 'use --mqtt-username or --port, docker run --privileged')).toEqual([
      '--mqtt-username',
    ]);
    expect(unknownFlags([table], "Unknown option '--portx'; run `replug list --nope`", byCommand)).toEqual([
      '--nope',
    ]);
    expect(flagsIn(`check the --tls-${EXPR} path`)).toEqual([]);
    expect(Object.keys(FOREIGN_FLAGS)).toContain('--device-cgroup-rule');
  });

  it('finds a wrong flag in a source file reached from a command', () => {
    const files = reachable(path.resolve('src/commands/agent.ts'));
    expect(files.has(path.resolve('src/mqtt/connect.ts'))).toBe(true);
    expect(files.has(path.resolve('src/broker/broker.ts'))).toBe(true);
  });
});
