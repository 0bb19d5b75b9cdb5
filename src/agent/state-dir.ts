/**
 * Where the agent keeps its boot counter and durable event queue. An explicit --state-dir must be
 * writable (clear error otherwise); the default is /var/lib/replug when writable (systemd StateDirectory,
 * containers with a volume), else $XDG_STATE_HOME/replug or ~/.local/state/replug.
 */
import { access, constants, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, errnoOf, ReplugError } from '../errors.js';

async function writable(dir: string): Promise<boolean> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export async function resolveStateDir(
  explicit: string | undefined,
  env: Record<string, string | undefined>,
  home: string,
): Promise<string> {
  if (explicit !== undefined) {
    try {
      await mkdir(explicit, { recursive: true });
      await access(explicit, constants.W_OK);
      return explicit;
    } catch (err) {
      throw new ReplugError(
        ErrorCodes.STATE_DIR,
        `state directory ${explicit} is not writable (${errnoOf(err) ?? 'error'})`,
        {
          hint: 'choose another with --state-dir or REPLUG_STATE_DIR, or fix its permissions',
          cause: err,
        },
      );
    }
  }
  const candidates = ['/var/lib/replug', join(env.XDG_STATE_HOME ?? join(home, '.local', 'state'), 'replug')];
  for (const dir of candidates) {
    if (await writable(dir)) return dir;
  }
  throw new ReplugError(
    ErrorCodes.STATE_DIR,
    `no writable state directory (tried ${candidates.join(', ')})`,
    {
      hint: 'give one with --state-dir or REPLUG_STATE_DIR',
    },
  );
}
