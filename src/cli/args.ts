/**
 * Thin wrapper over node:util parseArgs: strict (unknown flags are errors), and every problem is turned
 * into a ConfigError naming the flag, so commands report one clear line and exit 2.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';

export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

export function parseFlags<T extends OptionSpecs>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals, tokens: false });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // node's messages read like "Unknown option '--foo'. To specify a positional argument..." — keep the first sentence.
    const first = message.split('. ')[0] ?? message;
    throw new ConfigError([first.replace(/^Option /, 'option ')]);
  }
}

/** Writes a line to a stream. */
export function println(stream: NodeJS.WritableStream, text = ''): void {
  stream.write(`${text}\n`);
}
