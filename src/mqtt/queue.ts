/**
 * The bounded, durable event queue (issue 3, "Nothing lost"). Events wait here, in seq order, until the
 * broker's PUBACK for them arrives; they survive an agent restart and are delivered after it.
 *
 * On disk: one append-only file of JSON lines under the state dir, `mqtt-events.jsonl`:
 *   {"meta":{"lastSeq":N,"dropped":D}}   first line after a compaction
 *   {"ev":{...EventPayload...}}          an event (its seq inside)
 *   {"ack":seq}                          PUBACK received: done
 *   {"drop":seq}                         dropped at the bound (oldest first): done, counted
 * Replaying the lines gives the pending events, the seq to continue from and the dropped count. A torn
 * last line (crash mid-write) fails JSON.parse and is skipped; the file is then compacted.
 *
 * Durability policy: every line is written with write(2) at once, so a crash of the process (SIGKILL,
 * OOM) loses nothing (the data is in the page cache). fdatasync runs at most every `fsyncIntervalMs`
 * (default 1000) and on close: a power cut or kernel crash may lose up to that much, which keeps an SD card
 * on a Pi from being hammered during a replug storm. Compaction writes a temp file, fsyncs it and renames
 * it over the log (rename(2) is atomic), then fsyncs the directory.
 */
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { ErrorCodes, errnoOf, ReplugError } from '../errors.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { EventDraft, EventPayload, QueueStats } from './payloads.js';
import { buildEvent } from './payloads.js';

export const QUEUE_FILE = 'mqtt-events.jsonl';

export interface QueueOptions {
  /** The agent's --state-dir (created when missing). */
  dir: string;
  clock: Clock;
  /** Most events kept; at the bound the oldest are dropped. Default 10 000. */
  capacity?: number;
  fsyncIntervalMs?: number;
  /** Compact when the file holds this many more lines than pending events. Default 1000. */
  compactSlack?: number;
}

type Line =
  | { meta: { lastSeq: number; dropped: number } }
  | { ev: EventPayload }
  | { ack: number }
  | { drop: number };

export class DurableQueue {
  private readonly file: string;
  private readonly clock: Clock;
  readonly capacity: number;
  private readonly fsyncIntervalMs: number;
  private readonly compactSlack: number;
  private fd: number;
  /** Pending events by seq; Map keeps insertion (= seq) order. */
  private readonly pending = new Map<number, EventPayload>();
  private lastSeq = 0;
  private droppedCount = 0;
  private fileLines = 0;
  private dirty = false;
  private syncTimer: TimerHandle | undefined;
  private readonly listeners = new Set<() => void>();
  /** Lines that failed to parse when the file was opened (a torn tail after a crash). */
  readonly corruptLines: number;

  private constructor(options: QueueOptions) {
    this.clock = options.clock;
    this.capacity = options.capacity ?? 10_000;
    if (!Number.isInteger(this.capacity) || this.capacity < 1)
      throw new TypeError('queue capacity must be >= 1');
    this.fsyncIntervalMs = options.fsyncIntervalMs ?? 1000;
    this.compactSlack = options.compactSlack ?? 1000;
    this.file = path.join(options.dir, QUEUE_FILE);
    try {
      mkdirSync(options.dir, { recursive: true });
      this.corruptLines = this.replay();
      this.fd = openSync(this.file, 'a');
    } catch (err) {
      throw new ReplugError(
        ErrorCodes.STATE_DIR,
        `cannot use ${options.dir} for the event queue (${errnoOf(err) ?? String(err)})`,
        {
          hint: 'give --state-dir a writable directory',
          cause: err,
        },
      );
    }
    // Re-opened with more pending than the (possibly lowered) bound: apply the bound now.
    while (this.pending.size > this.capacity) this.dropOldest();
    if (this.corruptLines > 0 || this.fileLines > this.pending.size + this.compactSlack) this.compact();
  }

  static open(options: QueueOptions): DurableQueue {
    return new DurableQueue(options);
  }

  /** Stamps the draft with the next seq and the session, stores it, and returns the wire payload. */
  push(draft: EventDraft, session: number): EventPayload {
    const event = buildEvent(draft, this.lastSeq + 1, session);
    this.lastSeq = event.seq;
    if (this.pending.size >= this.capacity) this.dropOldest();
    this.pending.set(event.seq, event);
    this.append({ ev: event });
    for (const listener of [...this.listeners]) listener();
    return event;
  }

  /** PUBACK for seq arrived: it is done. Acks for unknown (dropped, already acked) seqs are ignored. */
  ack(seq: number): void {
    if (!this.pending.delete(seq)) return;
    this.append({ ack: seq });
    this.maybeCompact();
  }

  /** Pending events with seq > afterSeq, oldest first, at most `limit`. */
  peek(afterSeq: number, limit: number): EventPayload[] {
    const out: EventPayload[] = [];
    for (const [seq, ev] of this.pending) {
      if (seq <= afterSeq) continue;
      out.push(ev);
      if (out.length >= limit) break;
    }
    return out;
  }

  has(seq: number): boolean {
    return this.pending.has(seq);
  }

  get depth(): number {
    return this.pending.size;
  }

  get dropped(): number {
    return this.droppedCount;
  }

  /** The last seq handed out; the next event gets lastSeq + 1 (also after a restart). */
  get seq(): number {
    return this.lastSeq;
  }

  stats(): QueueStats {
    return { depth: this.pending.size, dropped: this.droppedCount, capacity: this.capacity };
  }

  /** Called after every push; returns the unsubscribe function (habit 4: the owner removes it). */
  onPush(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    if (this.syncTimer) this.clock.clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    this.listeners.clear();
    if (this.fd < 0) return;
    if (this.dirty) fdatasyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
  }

  private dropOldest(): void {
    const oldest = this.pending.keys().next();
    if (oldest.done) return;
    this.pending.delete(oldest.value);
    this.droppedCount++;
    this.append({ drop: oldest.value });
  }

  private append(line: Line): void {
    if (this.fd < 0) throw new ReplugError(ErrorCodes.INTERNAL, 'event queue used after close');
    writeSync(this.fd, `${JSON.stringify(line)}\n`);
    this.fileLines++;
    this.dirty = true;
    this.syncTimer ??= this.clock.setTimeout(() => {
      this.syncTimer = undefined;
      if (this.fd >= 0 && this.dirty) {
        fdatasyncSync(this.fd);
        this.dirty = false;
      }
    }, this.fsyncIntervalMs);
  }

  private maybeCompact(): void {
    if (this.fileLines > this.pending.size + this.compactSlack) this.compact();
  }

  /** Rewrites the log as meta + pending events: temp file, fsync, atomic rename, fsync the directory. */
  private compact(): void {
    const tmp = `${this.file}.tmp`;
    const lines: Line[] = [{ meta: { lastSeq: this.lastSeq, dropped: this.droppedCount } }];
    for (const ev of this.pending.values()) lines.push({ ev });
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    const dirFd = openSync(path.dirname(this.file), 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = openSync(this.file, 'a');
    }
    this.fileLines = lines.length;
    this.dirty = false;
  }

  /** Rebuilds state from the log; returns the number of unparseable lines. */
  private replay(): number {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return 0;
      throw err;
    }
    let corrupt = 0;
    for (const raw of text.split('\n')) {
      if (raw === '') continue;
      this.fileLines++;
      let line: Line;
      try {
        line = JSON.parse(raw) as Line;
      } catch {
        corrupt++;
        continue;
      }
      if ('ev' in line && typeof line.ev?.seq === 'number') {
        this.pending.set(line.ev.seq, line.ev);
        this.lastSeq = Math.max(this.lastSeq, line.ev.seq);
      } else if ('ack' in line) {
        this.pending.delete(line.ack);
      } else if ('drop' in line) {
        if (this.pending.delete(line.drop)) this.droppedCount++;
      } else if ('meta' in line) {
        this.lastSeq = Math.max(this.lastSeq, line.meta.lastSeq);
        this.droppedCount = line.meta.dropped;
      } else {
        corrupt++;
      }
    }
    return corrupt;
  }
}
