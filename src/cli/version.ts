/** The package version, for `replug --version`, the agent's info and its status payload. */
import { createRequire } from 'node:module';

export function version(): string {
  const require = createRequire(import.meta.url);
  for (const p of ['../../package.json', '../../../package.json']) {
    try {
      return (require(p) as { version: string }).version;
    } catch {
      // try the next layout (src/ under vitest, dist/src/ when built)
    }
  }
  return '0.0.0';
}
