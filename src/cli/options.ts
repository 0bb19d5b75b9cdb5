/**
 * One option table per command (issue 13): each row says flag, short flag, aliases, environment variable,
 * kind (type and validator), default and help line once. Parsing argv, reading the environment (env-var, from
 * an injected env object), defaults, `--help` (help.ts) and every error line are generated from it, so they
 * cannot drift apart. Every problem is collected and reported at once (habit 6).
 *
 * Precedence: flag > environment variable > default. An empty variable counts as unset (compose files write
 * `REPLUG_X=${X:-}`).
 */
import envVar from 'env-var';
import { ConfigError } from '../errors.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';
import type { Kind, ResolveContext } from './kinds.js';
import { kinds, OptionProblem } from './kinds.js';
import { type FlagInfo, type RawFlags, type TokenSpec, tokenize } from './tokenize.js';

export type { RawFlags } from './tokenize.js';

export interface Needs {
  /** Name (key) of the option that must be given too. */
  option: string;
  /** Why, shown in parentheses. */
  why?: string;
}

export interface OptionRow<T = unknown> {
  kind: Kind<T>;
  help: string;
  /** Heading in --help; rows keep the table's order within a group. */
  group?: string;
  short?: string;
  /** Other accepted flag names (`--broker-port` for `replug broker --port`). */
  aliases?: readonly string[];
  env?: string;
  /** Repeatable flag; the variable is comma-separated. */
  multiple?: boolean;
  default?: T;
  /** Shown as the default in --help when it is computed at run time (hostname, a state dir search). */
  defaultText?: string;
  /** Extra help lines under the row (indented). */
  more?: readonly string[];
  /** Problems when this option is given and these are not. */
  needs?: readonly Needs[];
  /** Given alone, this option or the named one: `--a and --b go together`. */
  goesWith?: string;
}

// biome-ignore lint/suspicious/noExplicitAny: a table holds rows of every kind; each row is typed where it is read.
export type Rows = Record<string, OptionRow<any>>;

type ValueOf<R> = R extends { kind: Kind<infer T>; multiple: true }
  ? T[]
  : R extends { kind: Kind<boolean> }
    ? boolean
    : R extends { kind: Kind<infer T>; default: unknown }
      ? T
      : R extends { kind: Kind<infer T> }
        ? T | undefined
        : never;

export type Values<O extends Rows> = { -readonly [K in keyof O]: ValueOf<O[K]> };

export type Origin = 'flag' | 'env' | 'default';

export interface Parsed<O extends Rows> {
  values: Values<O>;
  positionals: string[];
  from: Record<keyof O, Origin>;
  /** How the user named the option that set `key`: `--broker-port`, `-u`, `REPLUG_BROKER_PORT`, or `--key`. */
  where(key: keyof O): string;
}

export class OptionTable<O extends Rows> {
  constructor(readonly rows: O) {}

  /** Every flag name this table accepts (long names and aliases, without dashes). */
  flagNames(): string[] {
    return Object.entries(this.rows).flatMap(([name, row]) => [name, ...(row.aliases ?? [])]);
  }

  /** What the tokenizer needs: each flag name's shape, and the short letters. */
  tokenSpec(): TokenSpec {
    const flags = new Map<string, FlagInfo>();
    for (const [name, row] of Object.entries(this.rows)) {
      const info = {
        boolean: row.kind.boolean === true,
        multiple: row.multiple === true,
        metavar: row.kind.metavar ?? 'VALUE',
      };
      for (const flag of [name, ...(row.aliases ?? [])]) flags.set(flag, info);
    }
    return { flags, shorts: this.shortNames() };
  }

  /** Long name (key) for a short flag letter, if any. */
  shortNames(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, row] of Object.entries(this.rows)) if (row.short) out[row.short] = name;
    return out;
  }

  /** argv -> raw values by flag name; throws one ConfigError naming every problem. */
  tokenize(argv: readonly string[], allowPositionals = false): { raw: RawFlags; positionals: string[] } {
    const out = tokenize(argv, this.tokenSpec(), allowPositionals);
    if (out.problems.length > 0) throw new ConfigError(out.problems);
    return { raw: out.raw, positionals: out.positionals };
  }

  /** argv + env -> typed values, every problem at once (a ConfigError). */
  parse(argv: readonly string[], ctx: ResolveContext, allowPositionals = false): Parsed<O> {
    const { parsed, problems } = this.read(argv, ctx, allowPositionals);
    if (problems.length > 0) throw new ConfigError(problems);
    return parsed;
  }

  /** argv + env -> typed values and every problem (argv's first, then the table's order); never throws. */
  read(
    argv: readonly string[],
    ctx: ResolveContext,
    allowPositionals = false,
  ): { parsed: Parsed<O>; problems: string[] } {
    const tokens = tokenize(argv, this.tokenSpec(), allowPositionals);
    const { parsed, problems } = this.resolve(tokens.raw, ctx);
    return {
      parsed: { ...parsed, positionals: tokens.positionals },
      problems: [...tokens.problems, ...problems],
    };
  }

  /** Raw flags + env -> typed values and the problems, in table order. */
  resolve(raw: RawFlags, ctx: ResolveContext): { parsed: Parsed<O>; problems: string[] } {
    const env = envVar.from(ctx.env);
    const values: Record<string, unknown> = {};
    const from: Record<string, Origin> = {};
    const where: Record<string, string> = {};
    const problemsOf: Record<string, string[]> = {};
    for (const [name, row] of Object.entries(this.rows)) {
      const problems: string[] = [];
      problemsOf[name] = problems;
      const given = flagValues(raw, name, row);
      const envText = row.env ? env.get(row.env).asString() : undefined;
      let texts: (string | boolean)[] | undefined;
      if (given) {
        texts = given.texts;
        where[name] = given.where;
        from[name] = 'flag';
      } else if (row.env && envText !== undefined && envText !== '') {
        texts = row.multiple ? splitList(envText) : [envText];
        where[name] = row.env;
        from[name] = 'env';
      } else {
        where[name] = `--${name}`;
        from[name] = 'default';
      }
      const parsedValues: unknown[] = [];
      for (const text of texts ?? []) {
        if (text === true) parsedValues.push(true);
        else if (text === false) parsedValues.push(false);
        else {
          try {
            parsedValues.push(row.kind.parse(text, ctx));
          } catch (err) {
            if (!(err instanceof OptionProblem)) throw err;
            problems.push(phrase(where[name], err));
          }
        }
      }
      if (texts === undefined)
        values[name] = row.multiple ? [...((row.default as unknown[]) ?? [])] : fallback(row);
      else
        values[name] = row.multiple ? parsedValues : (parsedValues[parsedValues.length - 1] ?? fallback(row));
    }
    for (const [name, row] of Object.entries(this.rows)) {
      if (from[name] === 'default') continue;
      for (const n of row.needs ?? []) {
        if (from[n.option] === 'default')
          problemsOf[name]?.push(`${where[name]} needs --${n.option}${n.why ? ` (${n.why})` : ''}`);
      }
      if (row.goesWith && from[row.goesWith] === 'default')
        problemsOf[name]?.push(`--${name} and --${row.goesWith} go together`);
    }
    const parsed: Parsed<O> = {
      values: values as Values<O>,
      positionals: [],
      from: from as Record<keyof O, Origin>,
      where: (key) => where[key as string] ?? `--${String(key)}`,
    };
    return { parsed, problems: Object.values(problemsOf).flat() };
  }
}

export function defineOptions<const O extends Rows>(rows: O): OptionTable<O> {
  for (const [name, row] of Object.entries(rows)) {
    for (const n of row.needs ?? [])
      if (!(n.option in rows)) throw new Error(`option table: --${name} needs unknown --${n.option}`);
    if (row.goesWith && !(row.goesWith in rows))
      throw new Error(`option table: --${name} goes with unknown --${row.goesWith}`);
  }
  return new OptionTable(rows);
}

/** The one --log-level row (agent, broker, relay): one validator, one variable, one default. */
export const logLevelRow = {
  kind: kinds.choice(LOG_LEVELS, 'LEVEL'),
  env: 'REPLUG_LOG_LEVEL',
  default: 'info',
  help: LOG_LEVELS.join(', '),
} as const satisfies OptionRow<LogLevel>;

/** Rows every command has: --help and --debug (src/cli/main.ts reads --debug before the command runs). */
export const commonRows = {
  help: { kind: { boolean: true, parse: () => true } as Kind<boolean>, short: 'h', help: 'this text' },
  debug: {
    kind: { boolean: true, parse: () => true } as Kind<boolean>,
    help: 'print stack traces on errors',
  },
} as const satisfies Rows;

function flagValues(
  raw: RawFlags,
  name: string,
  row: OptionRow,
): { texts: (string | boolean)[]; where: string } | undefined {
  let texts: (string | boolean)[] | undefined;
  let where = `--${name}`;
  for (const flag of [name, ...(row.aliases ?? [])]) {
    const v = raw[flag];
    if (v === undefined) continue;
    const list = Array.isArray(v) ? v : [v];
    if (texts === undefined) where = `--${flag}`;
    texts = [...(texts ?? []), ...list];
  }
  return texts === undefined ? undefined : { texts, where };
}

function fallback(row: OptionRow): unknown {
  if (row.default !== undefined) return row.default;
  return row.kind.boolean ? false : undefined;
}

function phrase(where: string | undefined, problem: OptionProblem): string {
  return problem.sentence ? `${where}: ${problem.message}` : `${where} ${problem.message}`;
}

export function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
