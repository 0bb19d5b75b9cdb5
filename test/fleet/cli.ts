/** Runs `replug watch` as a function (src/cli/main.ts) with captured streams and an abort handle. */
import { PassThrough, Readable } from 'node:stream';
import { main } from '../../src/cli/main.js';

class Capture extends PassThrough {
  text = '';
  constructor() {
    super();
    this.on('data', (d: Buffer) => {
      this.text += d.toString();
    });
  }
}

export function watch(argv: string[], env: Record<string, string> = {}) {
  const stdout = new Capture();
  const stderr = new Capture();
  const abort = new AbortController();
  const code = main(['watch', ...argv], {
    env,
    stdin: Readable.from([]),
    stdout,
    stderr,
    signal: abort.signal,
    cwd: process.cwd(),
  });
  return {
    code,
    stdout,
    stderr,
    stop: async () => {
      abort.abort();
      return code;
    },
    async until(predicate: () => boolean, what: string, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > deadline)
          throw new Error(
            `timed out waiting for ${what}; stdout: ${stdout.text.slice(-800)} stderr: ${stderr.text}`,
          );
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

export const lines = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown> & { payload?: Record<string, unknown> });
