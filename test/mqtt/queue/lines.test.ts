import { describe, expect, it } from 'vitest';
import { LineSplitter, type Piece } from '../../../src/mqtt/queue/lines.js';

function split(chunks: (string | Buffer)[], max?: number): Piece[] {
  const s = new LineSplitter(max);
  const out: Piece[] = [];
  for (const c of chunks) out.push(...s.push(Buffer.isBuffer(c) ? c : Buffer.from(c)));
  return [...out, ...s.end()];
}

const texts = (pieces: Piece[]) => pieces.map((p) => (p.kind === 'line' ? p.text : `!${p.reason}`));

describe('LineSplitter', () => {
  it('joins lines across chunk boundaries, numbering them', () => {
    const pieces = split(['{"a', 'ck":1}\n{"ack":2}\n{"ac', 'k":3}\n']);
    expect(texts(pieces)).toEqual(['{"ack":1}', '{"ack":2}', '{"ack":3}']);
    expect(pieces.map((p) => p.number)).toEqual([1, 2, 3]);
  });

  it('hands over an unterminated last line (a torn tail) at the end', () => {
    expect(texts(split(['{"ack":1}\n{"ev":{"ty']))).toEqual(['{"ack":1}', '{"ev":{"ty']);
    expect(split(['{"ack":1}\n'])).toHaveLength(1);
  });

  it('keeps the bytes of a multi-byte character split between chunks', () => {
    const bytes = Buffer.from('{"p":"Grüße"}\n');
    expect(texts(split([bytes.subarray(0, 9), bytes.subarray(9)]))).toEqual(['{"p":"Grüße"}']);
  });

  it('skips a line longer than the bound without keeping it, and goes on', () => {
    const long = 'x'.repeat(100);
    const pieces = split([`{"ack":1}\n${long.slice(0, 50)}`, `${long.slice(50)}\n{"ack":2}\n`], 64);
    expect(texts(pieces)).toEqual(['{"ack":1}', '!longer than 64 bytes', '{"ack":2}']);
    expect(texts(split(['y'.repeat(70)], 64))).toEqual(['!longer than 64 bytes']);
  });

  it('reports invalid UTF-8 instead of publishing replacement characters', () => {
    expect(texts(split([Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a])]))).toEqual(['!not UTF-8']);
  });

  it('does not keep a view of a reused read buffer', () => {
    const s = new LineSplitter();
    const buf = Buffer.from('{"ack":1');
    s.push(buf);
    buf.fill(0x20);
    expect(texts(s.push(Buffer.from('2}\n')))).toEqual(['{"ack":12}']);
  });
});
