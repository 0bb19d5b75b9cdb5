import type { OptionTable, Rows } from './options.js';

/** What every command receives: the world, injected (habit 7: commands return exit codes, never exit). */
export interface CommandIO {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface CommandContext extends CommandIO {
  /** Arguments after the subcommand name. */
  argv: string[];
  env: Record<string, string | undefined>;
  /** Aborted on SIGINT/SIGTERM: long-running commands stop cleanly and return 0. */
  signal: AbortSignal;
  cwd: string;
  /**
   * Called by a long-running command once its start-up is done (the agent: after `started`); the bin
   * lets V8's optimizing compiler back in then (src/bin/v8-flags.ts).
   */
  onReady?: () => void;
}

export interface Command {
  readonly name: string;
  /** One line for `replug --help`. */
  readonly summary: string;
  /** `--help`, generated from the option tables. */
  readonly help: string;
  /** The option tables of the command and its subcommands (`broker passwd`): what the CLI tests walk. */
  readonly tables: readonly { readonly name: string; readonly options: OptionTable<Rows> }[];
  run(ctx: CommandContext): Promise<number>;
}

export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
} as const;
