/**
 * On-disk state for the broker: retained messages, persistent sessions' subscriptions, queued QoS 1/2
 * messages and wills, in LevelDB (classic-level) through aedes-persistence-level, the moscajs
 * implementation of the aedes 1.x persistence contract. Without a directory aedes keeps all of it in memory.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import levelPersistence, { type LevelPersistence } from 'aedes-persistence-level';
import { ClassicLevel } from 'classic-level';
import { ErrorCodes, errnoOf, ReplugError } from '../errors.js';

export interface OpenPersistence {
  /** Passed to aedes as `persistence`. */
  readonly persistence: LevelPersistence;
  /** Where the database lives (a subdirectory of the state dir). */
  readonly location: string;
  close(): Promise<void>;
}

export async function openPersistence(stateDir: string): Promise<OpenPersistence> {
  const location = path.join(stateDir, 'broker.leveldb');
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ReplugError(
      ErrorCodes.STATE_DIR,
      `cannot create broker state dir ${stateDir}: ${errnoOf(err) ?? err}`,
      {
        hint: 'pass --state-dir pointing at a writable directory',
        cause: err,
      },
    );
  }
  const db = new ClassicLevel(location);
  try {
    await db.open();
  } catch (err) {
    // LevelDB holds a LOCK file: a second broker on the same dir fails here rather than corrupting it.
    const cause = (err as { cause?: unknown }).cause;
    const locked =
      errnoOf(cause) === 'LEVEL_LOCKED' || /lock/i.test(String((cause as Error | undefined)?.message));
    throw new ReplugError(
      ErrorCodes.STATE_DIR,
      locked
        ? `broker state dir ${stateDir} is in use by another broker`
        : `cannot open broker state in ${location}: ${(cause as Error | undefined)?.message ?? String(err)}`,
      {
        hint: locked
          ? 'stop the other broker or give this one its own --state-dir'
          : 'check permissions and free disk space',
        cause: err,
      },
    );
  }
  const persistence = levelPersistence(db);
  let closed = false;
  return {
    persistence,
    location,
    async close() {
      if (closed) return;
      closed = true;
      await persistence.destroy();
    },
  };
}
