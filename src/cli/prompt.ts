/** Reads one line from a TTY after printing a question: the seed tool's interactive ID prompt. */
import { createInterface } from 'node:readline/promises';

export async function askLine(
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
  question: string,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const rl = createInterface({ input, output, terminal: false });
  try {
    return await rl.question(`${question} `, signal ? { signal } : {});
  } catch {
    return undefined; // aborted (Ctrl-C) or input closed
  } finally {
    rl.close();
  }
}
