/**
 * Splits the queue file into lines as it streams in, with bounded memory: the file is never one string
 * (issue 10: a 798 MB file stopped the agent with ERR_STRING_TOO_LONG, V8's ~512 MiB string limit), and a
 * line longer than `maxLineBytes` is skipped (its bytes are not kept), not buffered without end.
 */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;

export type Piece =
  | { kind: 'line'; text: string; number: number }
  | { kind: 'bad'; reason: string; number: number };

export class LineSplitter {
  private carry: Buffer[] = [];
  private carried = 0;
  private overlong = false;
  private number = 0;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(private readonly maxLineBytes = MAX_LINE_BYTES) {}

  /** The complete lines in `chunk` (with what earlier chunks left over). */
  push(chunk: Buffer): Piece[] {
    const out: Piece[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      this.keep(chunk.subarray(start, nl));
      out.push(this.finish());
      start = nl + 1;
    }
    if (start < chunk.length) this.keep(chunk.subarray(start));
    return out;
  }

  /** At end of file: the last line if it had no newline (a torn tail, or a file cut mid-line). */
  end(): Piece[] {
    if (this.carried === 0 && !this.overlong) return [];
    return [this.finish()];
  }

  private keep(part: Buffer): void {
    if (this.overlong) return;
    if (this.carried + part.length > this.maxLineBytes) {
      this.overlong = true;
      this.carry = [];
      this.carried = 0;
      return;
    }
    if (part.length > 0) {
      // subarray views the read buffer, which the reader may reuse: copy what outlives this chunk.
      this.carry.push(Buffer.from(part));
      this.carried += part.length;
    }
  }

  private finish(): Piece {
    const number = ++this.number;
    const overlong = this.overlong;
    const bytes = this.carry.length === 1 ? (this.carry[0] as Buffer) : Buffer.concat(this.carry);
    this.carry = [];
    this.carried = 0;
    this.overlong = false;
    if (overlong) return { kind: 'bad', reason: `longer than ${this.maxLineBytes} bytes`, number };
    try {
      return { kind: 'line', text: this.utf8.decode(bytes), number };
    } catch {
      return { kind: 'bad', reason: 'not UTF-8', number };
    }
  }
}
