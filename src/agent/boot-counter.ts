/**
 * The boot counter carried by `status` as `session`: +1 on every start, kept in the state dir, so a late
 * will from an older run is told apart from the live agent (DESIGN: status topic).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function nextBootCounter(stateDir: string): Promise<number> {
  const file = join(stateDir, 'session');
  let previous = 0;
  try {
    const n = Number.parseInt((await readFile(file, 'utf8')).trim(), 10);
    if (Number.isSafeInteger(n) && n > 0) previous = n;
  } catch {
    // first start, or an unreadable file: start over at 1 rather than refuse to run
  }
  const next = previous + 1;
  // Write-then-rename so a power cut never leaves a half-written counter.
  await writeFile(`${file}.tmp`, `${next}\n`);
  await rename(`${file}.tmp`, file);
  return next;
}
