/**
 * argv -> flags by name, for an option table. Not node:util parseArgs: parseArgs stops at the first problem
 * and words some of them over three lines (`--target --id x`: "argument is ambiguous. Did you forget ...
 * To specify ..."); here every problem is one line and all of them are reported together.
 *
 * Accepted forms: `--name value`, `--name=value`, `-x value`, `-xvalue`, grouped boolean shorts (`-hv`),
 * and `--` to end the options.
 */
/** Raw flag values by flag name (aliases included). */
export type RawFlags = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** What the tokenizer needs to know of each flag (options.ts derives it from a table). */
export interface FlagInfo {
  boolean: boolean;
  multiple: boolean;
  metavar: string;
}

export interface TokenSpec {
  /** By flag name, aliases included. */
  flags: ReadonlyMap<string, FlagInfo>;
  /** Short letter -> flag name. */
  shorts: Readonly<Record<string, string>>;
}

export interface Tokens {
  raw: RawFlags;
  /** Every flag value in argv order: options that bind to the `--target` before them (issue 15) read it. */
  order: { flag: string; value: string | boolean }[];
  positionals: string[];
  problems: string[];
}

export function tokenize(argv: readonly string[], spec: TokenSpec, allowPositionals: boolean): Tokens {
  const byFlag = spec.flags;
  const shorts = spec.shorts;
  const raw: RawFlags = {};
  const positionals: string[] = [];
  const problems: string[] = [];
  const order: Tokens['order'] = [];

  const set = (flag: string, value: string | boolean) => {
    const info = byFlag.get(flag);
    if (!info) return;
    order.push({ flag, value });
    const prev = raw[flag];
    if (info.multiple)
      raw[flag] = [...(Array.isArray(prev) ? prev : prev === undefined ? [] : [prev]), value];
    else raw[flag] = value;
  };
  // The next argv entry is a value unless it is missing or another option (a negative number is a value).
  const looksLikeOption = (next: string | undefined) =>
    next === undefined || next.startsWith('--') || (/^-[A-Za-z]/.test(next) && next.length === 2);
  const takeValue = (flag: string, shown: string, i: number): number => {
    const next = argv[i + 1];
    const info = byFlag.get(flag);
    if (looksLikeOption(next)) {
      problems.push(
        `${shown} needs a value (${info?.metavar ?? 'VALUE'})${next?.startsWith('-') ? `; for a value that starts with a dash, write ${shown}=VALUE` : ''}`,
      );
      return i;
    }
    set(flag, next as string);
    return i + 1;
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const flag = arg.slice(2, eq < 0 ? undefined : eq);
      const info = byFlag.get(flag);
      if (!info) {
        problems.push(`Unknown option '--${flag}'${suggest(flag, [...byFlag.keys()])}`);
        continue;
      }
      if (info.boolean) {
        if (eq >= 0) problems.push(`--${flag} takes no value (got "${arg.slice(eq + 1)}")`);
        else set(flag, true);
      } else if (eq >= 0) set(flag, arg.slice(eq + 1));
      else i = takeValue(flag, `--${flag}`, i);
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
      // -x, -xVALUE, or a group of boolean shorts -hv
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j] as string;
        const flag = shorts[letter];
        const info = flag === undefined ? undefined : byFlag.get(flag);
        if (!flag || !info) {
          problems.push(`Unknown option '-${letter}'`);
          break;
        }
        if (info.boolean) {
          set(flag, true);
          continue;
        }
        if (j + 1 < arg.length) set(flag, arg.slice(j + 1));
        else i = takeValue(flag, `-${letter}`, i);
        break;
      }
      continue;
    }
    if (allowPositionals) positionals.push(arg);
    else problems.push(`unexpected argument "${arg}": this command takes options only`);
  }
  return { raw, order, positionals, problems };
}

/** `; did you mean --broker-port?` for a near miss (one edit or a missing prefix), else nothing. */
function suggest(flag: string, known: string[]): string {
  const near = known.find((k) => k.endsWith(`-${flag}`) || distance(k, flag) <= 2);
  return near ? `; did you mean --${near}?` : '';
}

function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number;
      row[j] = Math.min(cur + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] as number;
}
