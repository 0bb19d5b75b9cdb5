/**
 * Value kinds for option tables (options.ts): how one flag's or variable's text becomes a typed value, and
 * the one phrase a user reads when it cannot. A kind is used for the flag and for its environment variable
 * alike, so `--broker-port x` and `REPLUG_BROKER_PORT=x` get the same answer with a different name in front.
 */
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { errnoOf } from '../errors.js';
import { checkBrokerUrl } from '../mqtt/url.js';

/**
 * A value that cannot be used. `sentence` problems read as their own clause after the name
 * (`--target: "zz" in target "zz:1" is not a vendor ID`); the others continue it (`--settle must be ...`).
 */
export class OptionProblem extends Error {
  constructor(
    message: string,
    readonly sentence = false,
  ) {
    super(message);
  }
}

/** What a file-naming flag points at, as far as the option layer checks (injected in tests). */
export type FileState = 'file' | 'directory' | 'missing' | 'unreadable' | 'other';

export interface ResolveContext {
  env: Record<string, string | undefined>;
  /** Relative paths resolve against this. */
  cwd: string;
  /**
   * Checks files named by `file` options (realFileState in commands). Absent: paths are only resolved, so
   * parsing stays pure for tests of the config layer.
   */
  fileState?: (file: string) => FileState;
}

export interface Kind<T> {
  /** What --help shows after the flag (MS, FILE, URL); booleans have none. */
  readonly metavar?: string;
  readonly boolean?: boolean;
  /** Throws OptionProblem. */
  parse(text: string, ctx: ResolveContext): T;
  /** How a default is printed in --help. */
  show?(value: T): string;
}

export function realFileState(file: string): FileState {
  try {
    const st = statSync(file);
    if (st.isDirectory()) return 'directory';
    if (!st.isFile()) return 'other';
    accessSync(file, constants.R_OK);
    return 'file';
  } catch (err) {
    return errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR' ? 'missing' : 'unreadable';
  }
}

export const kinds = {
  string(metavar = 'TEXT'): Kind<string> {
    return { metavar, parse: (text) => text };
  },

  /** On/off. Flags take no value; variables take true/false/1/0 (env-var's asBool words). */
  flag(): Kind<boolean> {
    return {
      boolean: true,
      parse(text) {
        const t = text.trim().toLowerCase();
        if (t === 'true' || t === '1') return true;
        if (t === 'false' || t === '0') return false;
        throw new OptionProblem(`must be true or false, got "${text}"`);
      },
    };
  },

  int(min: number, max: number, metavar = 'N'): Kind<number> {
    return {
      metavar,
      parse(text) {
        if (!/^-?\d+$/.test(text.trim())) throw new OptionProblem(`must be a whole number, got "${text}"`);
        const n = Number.parseInt(text, 10);
        if (n < min || n > max) throw new OptionProblem(`must be between ${min} and ${max}, got ${n}`);
        return n;
      },
    };
  },

  choice<const C extends string>(choices: readonly C[], metavar = 'WORD'): Kind<C> {
    return {
      metavar,
      parse(text) {
        if ((choices as readonly string[]).includes(text)) return text as C;
        const list =
          choices.length <= 3
            ? `${choices.slice(0, -1).join(', ')} or ${choices[choices.length - 1]}`
            : `one of ${choices.join(', ')}`;
        throw new OptionProblem(`must be ${list}, got "${text}"`);
      },
    };
  },

  /** A directory or path that may not exist yet (created later, or a root to read from). */
  path(metavar = 'DIR'): Kind<string> {
    return { metavar, parse: (text, ctx) => path.resolve(ctx.cwd, text) };
  },

  /**
   * A file that must exist now and be readable (issue 13: every missing file named by a flag gets the same
   * exit code and one line, at start, before anything runs).
   */
  file(metavar = 'FILE'): Kind<string> {
    return {
      metavar,
      parse(text, ctx) {
        const file = path.resolve(ctx.cwd, text);
        const state = ctx.fileState?.(file) ?? 'file';
        if (state === 'file') return file;
        const why = {
          missing: 'no such file',
          unreadable: 'cannot be read (permissions?)',
          directory: 'is a directory, not a file',
          other: 'is not a regular file',
        }[state];
        throw new OptionProblem(`${file}: ${why}`, true);
      },
    };
  },

  /**
   * A kind from a parser that returns an error sentence instead of throwing (src/usb/ids.ts style). Its
   * values are objects, so a string result is always the error.
   */
  parsed<T extends object>(metavar: string, parse: (text: string) => T | string): Kind<T> {
    return {
      metavar,
      parse(text) {
        const out = parse(text);
        if (typeof out === 'string') throw new OptionProblem(out, true);
        return out;
      },
    };
  },

  /** Text that must pass `check`, which returns the problem sentence or undefined. */
  checked(metavar: string, check: (text: string) => string | undefined): Kind<string> {
    return {
      metavar,
      parse(text) {
        const problem = check(text);
        if (problem !== undefined) throw new OptionProblem(problem, true);
        return text;
      },
    };
  },

  /** A broker URL through the one parser (src/mqtt/url.ts); the value is its normalised form. */
  brokerUrl(): Kind<string> {
    return {
      metavar: 'URL',
      parse(text) {
        const u = checkBrokerUrl(text);
        if (typeof u === 'string') throw new OptionProblem(u, true);
        return u.href;
      },
    };
  },

  /** `KEY=VALUE`, e.g. --driver-option baud=115200. */
  keyValue(metavar = 'KEY=VALUE'): Kind<[string, string]> {
    return {
      metavar,
      parse(text) {
        const eq = text.indexOf('=');
        if (eq <= 0) throw new OptionProblem(`"${text}" is not KEY=VALUE`, true);
        return [text.slice(0, eq).trim(), text.slice(eq + 1)];
      },
    };
  },
} as const;
