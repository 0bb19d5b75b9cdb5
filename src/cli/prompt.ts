/**
 * Reads answers line by line from a TTY after printing a question: the seed tool's interactive ID prompt.
 * One readline interface serves every question, so lines typed ahead (or piped) are not lost between
 * questions, and the end of input (Ctrl-D) or Ctrl-C answers `undefined` instead of hanging.
 */
import { createInterface } from 'node:readline';

export interface Prompter {
  ask(question: string): Promise<string | undefined>;
  close(): void;
}

export function createPrompter(
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
  signal?: AbortSignal,
): Prompter {
  const rl = createInterface({ input, terminal: false });
  const lines: string[] = [];
  const waiters: ((line: string | undefined) => void)[] = [];
  let closed = false;
  const finish = () => {
    closed = true;
    for (const w of waiters.splice(0)) w(undefined);
  };
  rl.on('line', (line) => {
    const w = waiters.shift();
    if (w) w(line);
    else lines.push(line);
  });
  rl.on('close', finish);
  const onAbort = () => rl.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  return {
    ask(question) {
      output.write(`${question} `);
      const line = lines.shift();
      if (line !== undefined) return Promise.resolve(line);
      if (closed) return Promise.resolve(undefined);
      return new Promise((resolve) => waiters.push(resolve));
    },
    close() {
      signal?.removeEventListener('abort', onAbort);
      rl.close();
    },
  };
}
