/**
 * What the queue says about its disk (issue 10: "say so once", where the old queue logged 408-1,565
 * lines, one per event): one warning when the file stops being writable, one line when it is again, and
 * for 10 minutes after that, debug lines only, so a disk that flaps (a tiny tmpfs the queue fills, a
 * read-only directory the file outgrows) is said once, not every few seconds. Every failure still counts
 * in health (`queue.disk.failures`).
 */
import { ErrorCodes, ReplugError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Clock } from '../../util/clock.js';

const QUIET_MS = 10 * 60_000;

export class DiskNotices {
  private quietUntil = Number.NEGATIVE_INFINITY;
  private loud = false;

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly file: string,
    private readonly retryMs: number,
  ) {}

  failed(code: string, err: unknown, failures: number): void {
    const fields = { file: this.file, errno: code, failures };
    const message = err instanceof Error ? err.message : String(err);
    if (this.clock.now() < this.quietUntil) {
      this.log.debug({ ...fields, err: message }, 'the event queue file failed again');
      return;
    }
    this.loud = true;
    const e = new ReplugError(
      ErrorCodes.STATE_DIR,
      `cannot write the event queue file ${this.file} (${code}); delivering queued events from memory, retrying every ${Math.round(this.retryMs / 1000)} s`,
      {
        hint: 'free space or fix the permissions of --state-dir; events queued meanwhile are lost if the agent stops first',
      },
    );
    this.log.warn({ ...fields, code: e.code, err: message }, `${e.message} (${e.hint})`);
  }

  recovered(downMs: number, failures: number): void {
    const downS = Math.round(downMs / 1000);
    const fields = { file: this.file, downS, failures };
    if (!this.loud) {
      this.log.debug(fields, 'the event queue file is writable again');
      return;
    }
    this.loud = false;
    this.quietUntil = this.clock.now() + QUIET_MS;
    this.log.info(fields, `the event queue file is writable again after ${downS} s; queued events are saved`);
  }
}
