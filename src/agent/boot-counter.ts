/**
 * The boot counter carried by `status` and every event as `session`: +1 on every start, kept in the state
 * dir, so a late will from an older run is told apart from the live agent (DESIGN: status topic), and
 * (session, seq) names one event even when the queue file lost its seq mark (docs/topics.md "Event
 * identity").
 *
 * It is on the device before the agent publishes anything: written to a temp file, fsynced, renamed over
 * the old one, the directory fsynced (issue 10: without the fsyncs a power cut could bring back the
 * previous counter, and with it sessions already used). When the directory refuses the temp file (full
 * disk, read-only directory) the counter is overwritten in place: it is fixed-width, one sector, so the
 * device writes it whole.
 */
import { join } from 'node:path';
import { ErrorCodes, errnoOf, ReplugError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import {
  counterText,
  nodeDisk,
  type QueueDisk,
  readSmallFile,
  writeCounterDurably,
} from '../mqtt/queue/disk.js';
import { MAX_SESSION } from '../mqtt/queue/format.js';

export const BOOT_COUNTER_FILE = 'session';

export interface BootCounterOptions {
  log?: Logger;
  disk?: QueueDisk;
}

export async function nextBootCounter(stateDir: string, options: BootCounterOptions = {}): Promise<number> {
  const disk = options.disk ?? nodeDisk;
  const log = options.log ?? silentLogger();
  const file = join(stateDir, BOOT_COUNTER_FILE);
  let previous = 0;
  let text: string | undefined;
  try {
    text = await readSmallFile(disk, file, 64);
  } catch (err) {
    log.warn(
      { file, err: errnoOf(err) ?? String(err) },
      `cannot read the boot counter ${file}; counting from 1 again`,
    );
  }
  if (text !== undefined) {
    const digits = text.trim();
    const n = /^\d{1,16}$/.test(digits) ? Number(digits) : Number.NaN;
    if (Number.isSafeInteger(n) && n >= 1 && n < MAX_SESSION) previous = n;
    else
      log.warn(
        { file, content: digits.slice(0, 40) },
        `the boot counter ${file} holds no usable count (1 to ${MAX_SESSION - 1}); counting from 1 again`,
      );
  }
  const next = previous + 1;
  try {
    await writeCounterDurably(disk, file, counterText(next));
  } catch (err) {
    throw new ReplugError(
      ErrorCodes.STATE_DIR,
      `cannot save the boot counter in ${stateDir} (${errnoOf(err) ?? String(err)})`,
      { hint: 'give --state-dir a writable directory with free space', cause: err },
    );
  }
  return next;
}
