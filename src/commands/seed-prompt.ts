/**
 * The original .NET tool asked for TEST_VID/TEST_PID on the console when they were missing; keep its
 * words. Answers are decimal 0-65535 as the seed took them; an answer that is not plain decimal is also
 * read as hex (`12ab`, `0x1209`), and the agent says which reading it used (issue 13: typing 1209 became
 * 04b9 without a word). An empty answer skips: the agent then watches devices without a target session.
 */
import type { CommandContext } from '../cli/context.js';
import { createPrompter } from '../cli/prompt.js';
import { hex4, parseDecimalId, parseHexId, type TargetSpec } from '../usb/ids.js';

export type IdReading = { id: number; as: 'decimal' | 'hex' };

/** Decimal first (the seed's contract), then hex; undefined when neither reads. */
export function readSeedId(answer: string): IdReading | undefined {
  const t = answer.trim();
  const dec = parseDecimalId(t);
  if (dec !== undefined) return { id: dec, as: 'decimal' };
  const hex = parseHexId(t);
  return hex === undefined ? undefined : { id: hex, as: 'hex' };
}

export function describeReading(what: string, answer: string, r: IdReading): string {
  const t = answer.trim();
  if (r.as === 'hex') return `replug: read ${t} as hex: ${what} ID ${hex4(r.id)}`;
  const tip = parseHexId(t) !== undefined && !/^0x/i.test(t) ? `; for hex ${t}, type 0x${t}` : '';
  return `replug: read ${t} as decimal: ${what} ID ${hex4(r.id)} in hex${tip}`;
}

/** A target from the answers; undefined when skipped (empty answer); null when input ended or Ctrl-C. */
export async function promptForTarget(
  ctx: Pick<CommandContext, 'stdin' | 'stdout' | 'stderr' | 'signal'>,
): Promise<TargetSpec | undefined | null> {
  const prompter = createPrompter(ctx.stdin, ctx.stdout, ctx.signal);
  const ask = async (what: 'Vendor' | 'Product'): Promise<number | undefined | null> => {
    for (;;) {
      const answer = await prompter.ask(
        `${what} ID not specified in environment. Please enter it (0-65535):`,
      );
      if (answer === undefined) return null;
      if (answer.trim() === '') return undefined;
      const reading = readSeedId(answer);
      if (reading) {
        ctx.stderr.write(`${describeReading(what.toLowerCase(), answer, reading)}\n`);
        return reading.id;
      }
      ctx.stderr.write(
        `replug: "${answer.trim()}" is not a number from 0 to 65535 (nor a hex ID like 0x1209)\n`,
      );
    }
  };
  try {
    const vid = await ask('Vendor');
    if (vid === null || vid === undefined) return vid;
    const pid = await ask('Product');
    if (pid === null) return null;
    return pid === undefined ? undefined : { vid: hex4(vid), pid: hex4(pid) };
  } finally {
    prompter.close();
  }
}
