/**
 * Rebuilds the queue's state from the lines of its file, in file order: the pending events, the seq to
 * continue from and the counters. Pure, so every odd file is a unit test; lines that cannot be trusted are
 * counted and the first one is kept for the log (issue 10: "what was skipped is logged once and counted").
 *
 * Speed (an old agent's outage file has millions of lines, nearly all of them done): the lines this
 * version writes are recognised by their shape first (`{"ack":N}`, and an event line ending in
 * one `"seq":N`), and an event is parsed and checked against the
 * schema only if it is still pending at the end. Any other line takes the full path at once.
 */
import type { EventPayload } from '../payloads.js';
import { decodeLine, isSeq } from './format.js';
import type { Piece } from './lines.js';

export interface Skip {
  line: number;
  reason: string;
}

export interface Replayed {
  /** Pending events, ascending seq. */
  events: EventPayload[];
  lastSeq: number;
  dropped: number;
  refused: number;
  /** Non-empty lines read, skipped ones included. */
  lines: number;
  skipped: number;
  firstSkip: Skip | undefined;
}

const DONE_LINE = /^\{"(ack|drop|refused)":(\d{1,16})\}$/;
const EVENT_SEQ = /"seq":(\d{1,16})[,}]/;

/** The seq of an event line, when it names exactly one; 0 otherwise (then the line is parsed at once). */
function eventSeq(text: string): number {
  const at = text.indexOf('"seq":');
  if (at < 0 || text.indexOf('"seq":', at + 6) >= 0) return 0;
  const m = EVENT_SEQ.exec(text.slice(at, at + 24));
  return m ? Number(m[1]) : 0;
}

interface Held {
  line: number;
  raw?: string;
  event?: EventPayload;
}

export class Replay {
  private readonly events = new Map<number, Held>();
  private lastSeq = 0;
  private dropped = 0;
  private refused = 0;
  private lines = 0;
  private skipped = 0;
  private firstSkip: Skip | undefined;
  private sorted = true;
  private highestEvent = 0;

  apply(piece: Piece): void {
    if (piece.kind === 'line' && piece.text.trim() === '') return;
    this.lines++;
    if (piece.kind === 'bad') {
      this.skip(piece.number, piece.reason);
      return;
    }
    const text = piece.text;
    const done = DONE_LINE.exec(text);
    if (done && isSeq(Number(done[2]))) {
      this.done(done[1] as 'ack', Number(done[2]));
      return;
    }
    if (text.startsWith('{"ev":{')) {
      const seq = eventSeq(text);
      if (isSeq(seq)) {
        this.hold(piece.number, seq, { line: piece.number, raw: text });
        return;
      }
    }
    const decoded = decodeLine(text);
    if (!decoded.ok) {
      this.skip(piece.number, decoded.reason);
      return;
    }
    const line = decoded.line;
    switch (line.kind) {
      case 'meta':
        // A rewritten file starts with one; max() keeps two concatenated files from going backwards.
        this.lastSeq = Math.max(this.lastSeq, line.meta.lastSeq);
        this.dropped = Math.max(this.dropped, line.meta.dropped);
        this.refused = Math.max(this.refused, line.meta.refused);
        break;
      case 'ev':
        this.hold(piece.number, line.event.seq, { line: piece.number, event: line.event });
        break;
      default:
        this.done(line.kind, line.seq);
    }
  }

  private hold(number: number, seq: number, held: Held): void {
    if (this.events.has(seq)) {
      this.skip(number, 'event: duplicate seq');
      return;
    }
    if (seq < this.highestEvent) this.sorted = false;
    this.highestEvent = Math.max(this.highestEvent, seq);
    this.events.set(seq, held);
    this.lastSeq = Math.max(this.lastSeq, seq);
  }

  private done(kind: 'ack' | 'drop' | 'refused', seq: number): void {
    if (!this.events.delete(seq)) return;
    if (kind === 'drop') this.dropped++;
    else if (kind === 'refused') this.refused++;
  }

  result(): Replayed {
    const events: EventPayload[] = [];
    for (const [seq, held] of this.events) {
      let event = held.event;
      if (!event) {
        const decoded = decodeLine(held.raw ?? '');
        if (!decoded.ok) {
          this.skip(held.line, decoded.reason);
          continue;
        }
        if (decoded.line.kind !== 'ev' || decoded.line.event.seq !== seq) {
          this.skip(held.line, 'event: not one event');
          continue;
        }
        event = decoded.line.event;
      }
      events.push(event);
    }
    if (!this.sorted) events.sort((a, b) => a.seq - b.seq);
    return {
      events,
      lastSeq: this.lastSeq,
      dropped: this.dropped,
      refused: this.refused,
      lines: this.lines,
      skipped: this.skipped,
      firstSkip: this.firstSkip,
    };
  }

  private skip(line: number, reason: string): void {
    this.skipped++;
    if (!this.firstSkip || line < this.firstSkip.line) this.firstSkip = { line, reason };
  }
}
