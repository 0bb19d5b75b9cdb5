/**
 * The disk side of the durable queue: the append-only file, its periodic fdatasync, its rewrite
 * (compaction), the seq high-water mark, and what happens when the disk fails (issue 10).
 *
 * State: `ok` (lines are appended as they come) or `failing` (the last write, sync, rewrite or check
 * failed: nothing is written, the queue keeps delivering from memory, a rewrite of the whole queue is
 * retried every `retryMs`). A failure is logged once, then quietly for 10 minutes if the disk flaps; it is
 * counted in health (`queue.disk`). Every operation that waits for the device runs through one promise
 * chain (`work`) on libuv's thread pool, never on the event loop (issue 12); only the append itself and the
 * rename that ends a rewrite are synchronous, one syscall each.
 *
 * Rewrite (compaction, and recovery after a failure): snapshot the pending events into `<file>.tmp`,
 * fsync it, then synchronously append the lines accepted meanwhile (`tail`) and rename it over the file,
 * then fsync the directory. A kill or power cut at any step leaves the old file or the new one, each
 * complete up to its last sync. When the temp file cannot be made (read-only directory, full disk) and no
 * pending event has the current file as its only copy, the file is rewritten in place instead.
 *
 * Seq mark (`<file>.seq`, written durably like the boot counter): no event with a seq above it is handed
 * to the broker, and it is reserved ahead in blocks of MARK_BLOCK, so whatever the queue file loses (torn
 * tail, cut, power cut), a restarted agent continues above every seq it may have published. While the disk
 * is failing the mark cannot move, and delivery must not stop, so events above it are sent anyway; their
 * identity then rests on `session` (the boot counter, durable since start): docs/topics.md "Event identity".
 */
import { ErrorCodes, errnoOf, ReplugError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Clock, TimerHandle } from '../../util/clock.js';
import { counterText, type QueueDisk, readSmallFile, writeCounterDurably } from './disk.js';
import { isSeq } from './format.js';

/** Seqs reserved at a time; a restart after a crash continues at the next multiple (a recognisable jump). */
export const MARK_BLOCK = 1000;
const markBlock = (o: JournalOptions) => o.markBlock ?? MARK_BLOCK;
const QUIET_MS = 10 * 60_000;

export interface Snapshot {
  /** The meta line, then one line per pending event in seq order. */
  text: string;
  lines: number;
  /** Highest event seq in `text`, 0 when none. */
  lastEventSeq: number;
}

export interface JournalOptions {
  disk: QueueDisk;
  clock: Clock;
  log: Logger;
  dir: string;
  file: string;
  fsyncIntervalMs: number;
  retryMs: number;
  /** Seqs reserved at a time (default MARK_BLOCK). */
  markBlock?: number;
  /** The whole queue as the file should hold it now. */
  snapshot(): Snapshot;
  /** Oldest pending seq, undefined when nothing is pending. */
  oldestPending(): number | undefined;
  /** ok <-> failing, or the mark moved: what may be sent changed. */
  onChange(): void;
}

export interface DiskStatus {
  state: 'ok' | 'failing';
  /** Times the disk went from ok to failing since start. */
  failures: number;
  /** errno of the last failure (ENOSPC, EROFS, EPERM, ENOENT, EIO...). */
  error?: string;
}

type State =
  | { kind: 'ok'; fd: number }
  | { kind: 'failing'; error: string; since: number }
  | { kind: 'closed' };

const noop = () => undefined;

export class Journal {
  private state: State = { kind: 'failing', error: 'ENOTOPEN', since: 0 };
  private fileLines: number;
  /** Highest event seq whose line is in the current file. */
  private written: number;
  /** Lines accepted while a rewrite runs; they follow the snapshot into the new file. */
  private tail: { lines: string[]; lastSeq: number } | undefined;
  private work: Promise<void> = Promise.resolve();
  private compactQueued = false;
  private dirty = false;
  private dirSyncPending = false;
  private syncTimer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private closing = false;
  private failures = 0;
  private lastError: string | undefined;
  private quietUntil = Number.NEGATIVE_INFINITY;
  private loudFailure = false;
  private mark: { durable: number; wanted: number; reserving: boolean };
  readonly markFile: string;

  private constructor(
    private readonly o: JournalOptions,
    initial: { lines: number; written: number; mark: number },
  ) {
    this.fileLines = initial.lines;
    this.written = initial.written;
    this.mark = { durable: initial.mark, wanted: 0, reserving: false };
    this.markFile = `${o.file}.seq`;
  }

  /** Reads the seq mark (0 when absent or not a valid seq). */
  static async readMark(disk: QueueDisk, file: string): Promise<number> {
    const text = await readSmallFile(disk, `${file}.seq`).catch(() => undefined);
    const n = text !== undefined && /^\d{1,16}\n?$/.test(text) ? Number(text.trim()) : 0;
    return isSeq(n) ? n : 0;
  }

  /**
   * Opens the file for appending (a failure starts in `failing`: what was read is delivered from memory),
   * rewrites it when asked (skipped lines, a lowered bound, too many dead lines), and reserves seqs above
   * `lastSeq` before anything is sent.
   */
  static async start(
    o: JournalOptions,
    initial: { lines: number; written: number; mark: number; lastSeq: number; rewrite: boolean },
  ): Promise<Journal> {
    const j = new Journal(o, initial);
    try {
      j.state = { kind: 'ok', fd: await o.disk.openAppend(o.file) };
    } catch (err) {
      j.state = { kind: 'ok', fd: -1 };
      j.fail(err);
    }
    if (j.state.kind === 'ok' && initial.rewrite) await j.run(async () => void (await j.rewrite()));
    j.needSeq(initial.lastSeq);
    await j.work;
    return j;
  }

  get status(): DiskStatus {
    const s: DiskStatus = { state: this.state.kind === 'ok' ? 'ok' : 'failing', failures: this.failures };
    if (this.lastError !== undefined) s.error = this.lastError;
    return s;
  }

  get failing(): boolean {
    return this.state.kind === 'failing';
  }

  /** Highest event seq the current file holds (the rest, while failing, is in memory only). */
  get writtenThrough(): number {
    return this.written;
  }

  /** Events up to this seq may go to the broker (see the header: the mark). */
  get sendableThrough(): number {
    return this.state.kind === 'failing' ? Number.POSITIVE_INFINITY : this.mark.durable;
  }

  get lines(): number {
    return this.fileLines;
  }

  /** Resolves when the disk work queued so far (syncs, rewrites, mark) is done. */
  async settled(): Promise<void> {
    let seen: Promise<void> | undefined;
    while (seen !== this.work) {
      seen = this.work;
      await seen;
    }
  }

  /** One line, synchronously into the kernel (a killed process loses nothing that returned). */
  append(line: string, eventSeq?: number): void {
    if (this.tail) {
      this.tail.lines.push(line);
      if (eventSeq !== undefined) this.tail.lastSeq = eventSeq;
    }
    if (this.state.kind !== 'ok') return;
    try {
      this.o.disk.appendSync(this.state.fd, line);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.fileLines++;
    if (eventSeq !== undefined) this.written = eventSeq;
    this.dirty = true;
    this.scheduleSync();
  }

  /** Rewrites the file once it holds more than `slack` lines beyond the pending events. */
  maybeCompact(pending: number, slack: number): void {
    if (this.state.kind !== 'ok' || this.compactQueued || this.closing) return;
    if (this.fileLines <= pending + slack) return;
    this.compactQueued = true;
    void this.run(async () => {
      this.compactQueued = false;
      if (this.state.kind === 'ok') await this.rewrite();
    });
  }

  /** seq was handed out: keep the durable mark ahead of it. */
  needSeq(seq: number): void {
    this.mark.wanted = Math.max(this.mark.wanted, seq);
    if (this.mark.reserving || this.closing || this.state.kind !== 'ok') return;
    if (this.mark.wanted + markBlock(this.o) / 2 <= this.mark.durable) return;
    this.mark.reserving = true;
    void this.run(async () => {
      try {
        if (this.state.kind === 'ok') await this.reserve();
      } finally {
        this.mark.reserving = false;
      }
    });
  }

  /** Final sync, the exact mark (so a clean restart continues without a jump), close. */
  async close(lastSeq: number): Promise<void> {
    this.closing = true;
    for (const t of [this.syncTimer, this.retryTimer]) if (t) this.o.clock.clearTimeout(t);
    this.syncTimer = this.retryTimer = undefined;
    await this.work;
    const state = this.state;
    this.state = { kind: 'closed' };
    if (state.kind !== 'ok') return;
    try {
      if (this.dirty) await this.o.disk.datasync(state.fd);
      if (this.dirSyncPending) await this.o.disk.fsyncDir(this.o.dir);
      if (lastSeq > 0 && lastSeq < this.mark.durable)
        await writeCounterDurably(this.o.disk, this.markFile, counterText(lastSeq));
    } catch (err) {
      this.o.log.warn({ err: String(err) }, `could not sync the event queue file ${this.o.file} on close`);
    } finally {
      await this.o.disk.close(state.fd).catch(noop);
    }
  }

  private run(task: () => Promise<void>): Promise<void> {
    const next = this.work.then(task).catch((err: unknown) => this.fail(err));
    this.work = next;
    return next;
  }

  private scheduleSync(): void {
    if (this.syncTimer || this.closing) return;
    this.syncTimer = this.o.clock.setTimeout(() => {
      this.syncTimer = undefined;
      void this.run(() => this.sync());
    }, this.o.fsyncIntervalMs);
  }

  private async sync(): Promise<void> {
    if (this.state.kind !== 'ok') return;
    const fd = this.state.fd;
    try {
      // rm -rf of the state dir does not fail a write to the open file: look (issue 10).
      if (!(await this.o.disk.linked(fd)))
        throw Object.assign(new Error(`${this.o.file} was removed`), { code: 'ENOENT' });
      if (this.dirSyncPending) {
        await this.o.disk.fsyncDir(this.o.dir);
        this.dirSyncPending = false;
      }
      if (this.dirty) {
        this.dirty = false;
        await this.o.disk.datasync(fd);
      }
    } catch (err) {
      if (this.state.kind === 'ok' && this.state.fd === fd) this.fail(err);
    }
  }

  private async reserve(): Promise<void> {
    const block = markBlock(this.o);
    const target = (Math.floor(this.mark.wanted / block) + 2) * block;
    await writeCounterDurably(this.o.disk, this.markFile, counterText(target));
    this.mark.durable = target;
    this.o.onChange();
  }

  /** Writes the whole queue anew; true when the file is whole again (state ok). */
  private async rewrite(): Promise<boolean> {
    const { disk, file } = this.o;
    const snap = this.o.snapshot();
    const tail = { lines: [] as string[], lastSeq: snap.lastEventSeq };
    this.tail = tail;
    const tmp = `${file}.tmp`;
    let fd: number | undefined;
    try {
      await disk.mkdirp(this.o.dir);
      fd = await disk.openAppend(tmp, true);
      await disk.append(fd, snap.text);
      await disk.fsync(fd);
      // The switch, in one synchronous step so no line falls between the two files.
      if (tail.lines.length > 0) disk.appendSync(fd, tail.lines.join(''));
      disk.renameSync(tmp, file);
    } catch (err) {
      this.tail = undefined;
      if (fd !== undefined) await disk.close(fd).catch(noop);
      await disk.unlink(tmp).catch(noop);
      if (this.state.kind === 'failing' && this.inPlaceIsSafe()) return this.rewriteInPlace(err);
      this.fail(err);
      return false;
    }
    this.tail = undefined;
    const old = this.state.kind === 'ok' ? this.state.fd : undefined;
    this.adopt(fd, snap.lines + tail.lines.length, tail.lastSeq, tail.lines.length > 0);
    this.dirSyncPending = true;
    if (old !== undefined) await disk.close(old).catch(noop);
    await disk.fsyncDir(this.o.dir);
    this.dirSyncPending = false;
    return true;
  }

  /** No pending event has the current file as its only copy: truncating it cannot lose one. */
  private inPlaceIsSafe(): boolean {
    const oldest = this.o.oldestPending();
    return oldest === undefined || oldest > this.written;
  }

  private async rewriteInPlace(first: unknown): Promise<boolean> {
    const { disk } = this.o;
    const snap = this.o.snapshot();
    const tail = { lines: [] as string[], lastSeq: snap.lastEventSeq };
    this.tail = tail;
    let fd: number | undefined;
    try {
      fd = await disk.openAppend(this.o.file);
      await disk.truncate(fd, 0);
      await disk.append(fd, snap.text);
      if (tail.lines.length > 0) disk.appendSync(fd, tail.lines.join(''));
    } catch (err) {
      this.tail = undefined;
      if (fd !== undefined) await disk.close(fd).catch(noop);
      this.o.log.debug({ err: String(first) }, 'queue file: temp file failed, then in-place rewrite');
      this.fail(err);
      return false;
    }
    this.tail = undefined;
    this.adopt(fd, snap.lines + tail.lines.length, tail.lastSeq, true);
    return true;
  }

  private adopt(fd: number, lines: number, written: number, dirty: boolean): void {
    const wasFailing = this.state.kind === 'failing';
    const since = this.state.kind === 'failing' ? this.state.since : 0;
    this.state = { kind: 'ok', fd };
    this.fileLines = lines;
    this.written = written;
    this.dirty = dirty;
    if (dirty) this.scheduleSync();
    if (!wasFailing) return;
    const downS = Math.round((this.o.clock.now() - since) / 1000);
    const fields = { file: this.o.file, downS, failures: this.failures };
    if (this.loudFailure) {
      this.o.log.info(
        fields,
        `the event queue file is writable again after ${downS} s; queued events are saved`,
      );
      this.quietUntil = this.o.clock.now() + QUIET_MS;
    } else this.o.log.debug(fields, 'the event queue file is writable again');
    this.loudFailure = false;
    this.needSeq(this.mark.wanted);
    this.o.onChange();
  }

  private fail(err: unknown): void {
    if (this.state.kind === 'closed' || this.closing) return;
    const code = errnoOf(err) ?? 'EIO';
    this.lastError = code;
    if (this.state.kind === 'ok') {
      const fd = this.state.fd;
      if (fd >= 0) void this.run(() => this.o.disk.close(fd).catch(noop));
      this.state = { kind: 'failing', error: code, since: this.o.clock.now() };
      this.failures++;
      this.dirty = false;
      if (this.syncTimer) this.o.clock.clearTimeout(this.syncTimer);
      this.syncTimer = undefined;
      this.report(code, err);
      this.o.onChange();
    }
    this.scheduleRetry();
  }

  private report(code: string, err: unknown): void {
    const fields = { file: this.o.file, code, failures: this.failures };
    const message = err instanceof Error ? err.message : String(err);
    if (this.o.clock.now() < this.quietUntil) {
      this.o.log.debug({ ...fields, err: message }, 'the event queue file failed again');
      return;
    }
    this.loudFailure = true;
    const e = new ReplugError(
      ErrorCodes.STATE_DIR,
      `cannot write the event queue file ${this.o.file} (${code}); delivering queued events from memory, retrying every ${Math.round(this.o.retryMs / 1000)} s`,
      {
        hint: 'free space or fix the permissions of --state-dir; events queued meanwhile are lost if the agent stops first',
      },
    );
    this.o.log.warn({ ...fields, code: e.code, errno: code, err: message }, `${e.message} (${e.hint})`);
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closing) return;
    this.retryTimer = this.o.clock.setTimeout(() => {
      this.retryTimer = undefined;
      void this.run(async () => {
        if (this.state.kind === 'failing') await this.rewrite();
      });
    }, this.o.retryMs);
  }
}
