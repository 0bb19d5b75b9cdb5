/**
 * The disk side of the durable queue (issue 10): the append-only file, its periodic fdatasync, its
 * rewrites (compaction, and recovery: queue/rewrite.ts), the seq mark (queue/mark.ts), and the disk's
 * state. `ok`: lines are appended as they come. `failing`: the last write, sync, rewrite or check failed;
 * nothing is written, the queue delivers from memory, the whole queue is rewritten every `retryMs` until
 * it takes (said once: queue/notices.ts; counted in health `queue.disk`). While failing the mark cannot
 * move and delivery must not stop, so events above it are sent anyway: their identity then rests on
 * `session` (docs/topics.md "Event identity").
 *
 * Everything that waits for the device runs through one promise chain (`work`) on libuv's thread pool,
 * never on the event loop (issue 12): only the append and a rewrite's final switch are synchronous. A
 * periodic sync therefore never runs during a rewrite; the lines accepted meanwhile are synced after it.
 */
import { errnoOf } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Clock, TimerHandle } from '../../util/clock.js';
import type { QueueDisk } from './disk.js';
import { markLow, markTarget, writeMark } from './mark.js';
import { DiskNotices } from './notices.js';
import { replaceViaTemp, rewriteInPlace, type Snapshot, type Tail } from './rewrite.js';

export type { Snapshot } from './rewrite.js';

export interface JournalOptions {
  disk: QueueDisk;
  clock: Clock;
  log: Logger;
  dir: string;
  file: string;
  fsyncIntervalMs: number;
  retryMs: number;
  /** Seqs the mark reserves at a time (default MARK_BLOCK, queue/mark.ts). */
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
  private tail: Tail | undefined;
  private work: Promise<void> = Promise.resolve();
  private compactQueued = false;
  private dirty = false;
  private dirSyncPending = false;
  private syncTimer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private closing = false;
  private failures = 0;
  private lastError: string | undefined;
  private readonly notices: DiskNotices;
  private mark: { durable: number; wanted: number; reserving: boolean };

  private constructor(
    private readonly o: JournalOptions,
    initial: { lines: number; written: number; mark: number },
  ) {
    this.fileLines = initial.lines;
    this.written = initial.written;
    this.mark = { durable: initial.mark, wanted: 0, reserving: false };
    this.notices = new DiskNotices(o.log, o.clock, o.file, o.retryMs);
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
    if (!markLow(this.mark.wanted, this.mark.durable, this.o.markBlock)) return;
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
      if (lastSeq > 0 && lastSeq < this.mark.durable) await writeMark(this.o.disk, this.o.file, lastSeq);
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
    const target = markTarget(this.mark.wanted, this.o.markBlock);
    await writeMark(this.o.disk, this.o.file, target);
    this.mark.durable = target;
    this.o.onChange();
  }

  /** Writes the whole queue anew; true when the file is whole again (state ok). */
  private async rewrite(): Promise<boolean> {
    const snap = this.o.snapshot();
    const tail: Tail = { lines: [], lastSeq: snap.lastEventSeq };
    this.tail = tail;
    let fd: number;
    try {
      fd = await replaceViaTemp(this.o.disk, this.o.file, snap, tail);
    } catch (err) {
      this.tail = undefined;
      if (this.state.kind === 'failing' && this.inPlaceIsSafe()) return this.rewriteInPlace(err);
      this.fail(err);
      return false;
    }
    this.tail = undefined;
    const old = this.state.kind === 'ok' ? this.state.fd : undefined;
    this.adopt(fd, snap.lines + tail.lines.length, tail.lastSeq, tail.lines.length > 0);
    this.dirSyncPending = true;
    if (old !== undefined) await this.o.disk.close(old).catch(noop);
    await this.o.disk.fsyncDir(this.o.dir);
    this.dirSyncPending = false;
    return true;
  }

  /** No pending event has the current file as its only copy: truncating it cannot lose one. */
  private inPlaceIsSafe(): boolean {
    const oldest = this.o.oldestPending();
    return oldest === undefined || oldest > this.written;
  }

  private async rewriteInPlace(first: unknown): Promise<boolean> {
    const snap = this.o.snapshot();
    const tail: Tail = { lines: [], lastSeq: snap.lastEventSeq };
    this.tail = tail;
    let fd: number;
    try {
      fd = await rewriteInPlace(this.o.disk, this.o.file, snap, tail);
    } catch (err) {
      this.tail = undefined;
      this.o.log.debug(
        { err: String(first) },
        'queue file: no temp file, and the in-place rewrite failed too',
      );
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
    this.notices.recovered(this.o.clock.now() - since, this.failures);
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
      this.notices.failed(code, err, this.failures);
      this.o.onChange();
    }
    this.scheduleRetry();
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
