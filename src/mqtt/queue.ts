/**
 * The bounded, durable event queue (issue 3, "Nothing lost"; issue 10, "keeps its promise under disk
 * faults"). Events wait here, in seq order, until the broker's PUBACK for them arrives; they survive an
 * agent restart and are delivered after it. Memory is the source of truth for delivery: the file
 * (queue/journal.ts) is what survives a restart, and when it cannot be written the queue keeps delivering.
 *
 * What survives what (docs/topics.md "The durable queue on disk"):
 * - a killed process (SIGKILL, OOM): every event `push` returned, every ack, drop and refusal (each line
 *   is written with write(2) before the call returns);
 * - a power cut or kernel crash: everything older than the last periodic fdatasync (every
 *   `fsyncIntervalMs`, default 1 s, while lines are written), and the seq mark: no seq the broker may have
 *   seen is handed out again;
 * - a disk that fails while running (full, read-only, immutable file, state dir removed): nothing already
 *   queued is lost while the agent runs; events queued during the failure are in memory only until the
 *   disk recovers (health `queue.disk.unsaved`).
 *
 * In-flight events (handed to the MQTT client, awaiting PUBACK) are never dropped at the bound: the client
 * holds them and replays them on reconnect, so they get delivered (issue 10: `dropped` counted them,
 * 3,893 reported for a real gap of 3,890). The oldest event not yet sent is dropped instead.
 */
import path from 'node:path';
import { ErrorCodes, errnoOf, ReplugError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import type { Clock } from '../util/clock.js';
import type { EventDraft, EventPayload, QueueStats } from './payloads.js';
import { buildEvent } from './payloads.js';
import { nodeDisk, type QueueDisk } from './queue/disk.js';
import { encodeDone, encodeEvent, encodeMeta, MAX_SEQ } from './queue/format.js';
import { Journal, type Snapshot } from './queue/journal.js';
import { LineSplitter } from './queue/lines.js';
import { readMark } from './queue/mark.js';
import { Replay, type Replayed } from './queue/replay.js';

export const QUEUE_FILE = 'mqtt-events.jsonl';

export interface QueueOptions {
  /** The agent's --state-dir (created when missing). */
  dir: string;
  clock: Clock;
  /** Most events kept; at the bound the oldest not yet sent are dropped. Default 10 000. */
  capacity?: number;
  fsyncIntervalMs?: number;
  /** Rewrite the file when it holds this many more lines than pending events (at most `capacity`). Default 1000. */
  compactSlack?: number;
  /** While the disk fails, try to rewrite the file this often. Default 5000. */
  retryMs?: number;
  /** Seqs the durable mark reserves at a time (queue/journal.ts). Default 1000. */
  markBlock?: number;
  log?: Logger;
  disk?: QueueDisk;
}

interface Entry {
  event: EventPayload;
  line: string;
  inFlight: boolean;
}

export class DurableQueue {
  readonly capacity: number;
  /** Lines of the file that could not be trusted when it was opened (torn tail, hand edits, corruption). */
  readonly corruptLines: number;
  private readonly slack: number;
  /** Pending events by seq; the Map keeps insertion (= seq) order. */
  private readonly entries = new Map<number, Entry>();
  private inFlightCount = 0;
  private lastSeq: number;
  private droppedCount: number;
  private refusedCount: number;
  private journal!: Journal;
  private closed = false;
  private readonly listeners = new Set<() => void>();

  private constructor(replayed: Replayed, mark: number, capacity: number, slack: number) {
    this.capacity = capacity;
    this.slack = slack;
    this.corruptLines = replayed.skipped;
    this.lastSeq = Math.max(replayed.lastSeq, mark);
    this.droppedCount = replayed.dropped;
    this.refusedCount = replayed.refused;
    for (const event of replayed.events)
      this.entries.set(event.seq, { event, line: encodeEvent(event), inFlight: false });
  }

  /** Reads the file as a stream (any size), validates every line, applies the bound, opens the journal. */
  static async open(options: QueueOptions): Promise<DurableQueue> {
    const capacity = options.capacity ?? 10_000;
    if (!Number.isInteger(capacity) || capacity < 1) throw new TypeError('queue capacity must be >= 1');
    const disk = options.disk ?? nodeDisk;
    const log = (options.log ?? silentLogger()).child({ module: 'queue' });
    const file = path.join(options.dir, QUEUE_FILE);
    let replayed: Replayed;
    let mark: number;
    try {
      await disk.mkdirp(options.dir);
      replayed = await readQueueFile(disk, file);
      mark = await readMark(disk, file);
    } catch (err) {
      throw new ReplugError(
        ErrorCodes.STATE_DIR,
        `cannot use ${options.dir} for the event queue (${errnoOf(err) ?? String(err)})`,
        { hint: 'give --state-dir a writable directory', cause: err },
      );
    }
    const q = new DurableQueue(replayed, mark, capacity, Math.min(options.compactSlack ?? 1000, capacity));
    // Re-opened with more pending than the (possibly lowered) bound: apply it now.
    let droppedNow = 0;
    while (q.entries.size > capacity && q.dropOldest(false)) droppedNow++;
    if (replayed.skipped > 0) {
      const first = replayed.firstSkip;
      log.warn(
        { file, skipped: replayed.skipped, firstLine: first?.line, reason: first?.reason },
        `skipped ${replayed.skipped} line${replayed.skipped === 1 ? '' : 's'} of the event queue file that could not be trusted (first: line ${first?.line}, ${first?.reason}); ${q.entries.size} queued events kept`,
      );
    }
    q.journal = await Journal.start(
      {
        disk,
        clock: options.clock,
        log,
        dir: options.dir,
        file,
        fsyncIntervalMs: options.fsyncIntervalMs ?? 1000,
        retryMs: options.retryMs ?? 5000,
        ...(options.markBlock ? { markBlock: options.markBlock } : {}),
        snapshot: () => q.snapshot(),
        oldestPending: () => q.entries.keys().next().value,
        onChange: () => q.notify(),
      },
      {
        lines: replayed.lines,
        written: replayed.lastSeq,
        mark,
        lastSeq: q.lastSeq,
        rewrite: replayed.skipped > 0 || droppedNow > 0 || replayed.lines > q.entries.size + q.slack,
      },
    );
    return q;
  }

  /** Stamps the draft with the next seq and the session, queues it (durably: see the header), returns it. */
  push(draft: EventDraft, session: number): EventPayload {
    if (this.closed) throw new ReplugError(ErrorCodes.INTERNAL, 'event queue used after close');
    if (this.lastSeq >= MAX_SEQ)
      throw new ReplugError(ErrorCodes.INTERNAL, `event seq exhausted (${MAX_SEQ})`);
    const event = buildEvent(draft, this.lastSeq + 1, session);
    this.lastSeq = event.seq;
    if (this.entries.size >= this.capacity) this.dropOldest(true);
    const line = encodeEvent(event);
    this.entries.set(event.seq, { event, line, inFlight: false });
    this.journal.append(line, event.seq);
    this.journal.needSeq(event.seq);
    this.journal.maybeCompact(this.entries.size, this.slack);
    this.notify();
    return event;
  }

  /** PUBACK for seq arrived: it is done. Acks for unknown (dropped, already acked) seqs are ignored. */
  ack(seq: number): void {
    this.finish(seq, 'ack');
  }

  /** The broker refused seq for good (negative MQTT 5 PUBACK): done, counted in `refused`. */
  refuse(seq: number): void {
    if (this.finish(seq, 'refused')) this.refusedCount++;
  }

  /**
   * Up to `limit` events not yet in flight, oldest first, marked in flight. Stops at the seq mark while the
   * disk works (queue/journal.ts): a seq above it is not durable yet.
   */
  take(limit: number): EventPayload[] {
    const out: EventPayload[] = [];
    if (limit <= 0) return out;
    const bound = this.journal.sendableThrough;
    for (const [seq, entry] of this.entries) {
      if (seq > bound) break;
      if (entry.inFlight) continue;
      entry.inFlight = true;
      this.inFlightCount++;
      out.push(entry.event);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** The client no longer holds seq (its publish failed): it waits to be sent again. */
  release(seq: number): void {
    const entry = this.entries.get(seq);
    if (!entry?.inFlight) return;
    entry.inFlight = false;
    this.inFlightCount--;
  }

  /** The client is gone: nothing is in flight any more. */
  releaseAll(): void {
    for (const entry of this.entries.values()) entry.inFlight = false;
    this.inFlightCount = 0;
  }

  /** Pending events with seq > afterSeq, oldest first, at most `limit` (in flight or not). */
  peek(afterSeq: number, limit: number): EventPayload[] {
    const out: EventPayload[] = [];
    for (const [seq, entry] of this.entries) {
      if (out.length >= limit) break;
      if (seq > afterSeq) out.push(entry.event);
    }
    return out;
  }

  has(seq: number): boolean {
    return this.entries.has(seq);
  }

  get depth(): number {
    return this.entries.size;
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  get dropped(): number {
    return this.droppedCount;
  }

  get refused(): number {
    return this.refusedCount;
  }

  /** The last seq handed out; the next event gets seq + 1 (also after a restart). */
  get seq(): number {
    return this.lastSeq;
  }

  /** Lines in the file now (tests, and the bound the file keeps: pending + slack). */
  get fileLines(): number {
    return this.journal.lines;
  }

  stats(): QueueStats {
    const disk = this.journal.status;
    let unsaved = 0;
    if (this.journal.failing) {
      const written = this.journal.writtenThrough;
      for (const seq of this.entries.keys()) if (seq > written) unsaved++;
    }
    return {
      depth: this.entries.size,
      dropped: this.droppedCount,
      capacity: this.capacity,
      refused: this.refusedCount,
      skipped: this.corruptLines,
      disk: { ...disk, unsaved },
    };
  }

  /**
   * Called whenever events may have become sendable (a push, the disk recovering, the seq mark moving);
   * returns the unsubscribe function (habit 4: the owner removes it).
   */
  onPush(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when the disk work started so far (rewrites, syncs, the seq mark) has finished: for tests. */
  settled(): Promise<void> {
    return this.journal.settled();
  }

  /** Syncs and closes the file (waiting for any rewrite in progress). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await this.journal.close(this.lastSeq);
  }

  private finish(seq: number, kind: 'ack' | 'refused'): boolean {
    const entry = this.entries.get(seq);
    if (!entry) return false;
    this.entries.delete(seq);
    if (entry.inFlight) this.inFlightCount--;
    if (this.closed) return true;
    this.journal.append(encodeDone(kind, seq));
    this.journal.maybeCompact(this.entries.size, this.slack);
    return true;
  }

  /** Drops the oldest event not in flight; false when every queued event is in flight. */
  private dropOldest(write: boolean): boolean {
    for (const [seq, entry] of this.entries) {
      if (entry.inFlight) continue;
      this.entries.delete(seq);
      this.droppedCount++;
      if (write) this.journal.append(encodeDone('drop', seq));
      return true;
    }
    return false;
  }

  private snapshot(): Snapshot {
    const parts = [
      encodeMeta({ lastSeq: this.lastSeq, dropped: this.droppedCount, refused: this.refusedCount }),
    ];
    let lastEventSeq = 0;
    for (const [seq, entry] of this.entries) {
      parts.push(entry.line);
      lastEventSeq = seq;
    }
    return { text: parts.join(''), lines: parts.length, lastEventSeq };
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

/** The file as a stream of validated lines (never one string: issue 10, ERR_STRING_TOO_LONG at 798 MB). */
async function readQueueFile(disk: QueueDisk, file: string): Promise<Replayed> {
  const replay = new Replay();
  const chunks = await disk.readChunks(file);
  if (chunks) {
    const splitter = new LineSplitter();
    for await (const chunk of chunks) for (const piece of splitter.push(chunk)) replay.apply(piece);
    for (const piece of splitter.end()) replay.apply(piece);
  }
  return replay.result();
}
