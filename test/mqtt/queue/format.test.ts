import { describe, expect, it } from 'vitest';
import { buildEvent, eventDraft } from '../../../src/mqtt/payloads.js';
import { decodeLine, encodeDone, encodeEvent, encodeMeta, MAX_SEQ } from '../../../src/mqtt/queue/format.js';
import { device } from '../fixtures.js';

const event = buildEvent(eventDraft('device.added', { device, source: 'devfs' }, 1_767_225_600_000), 7, 2);
const ev = (patch: Record<string, unknown>) => JSON.stringify({ ev: { ...event, ...patch } });

describe('queue file lines', () => {
  it('round-trips every record it writes', () => {
    for (const [text, line] of [
      [encodeEvent(event), { kind: 'ev', event }],
      [encodeDone('ack', 7), { kind: 'ack', seq: 7 }],
      [encodeDone('drop', 8), { kind: 'drop', seq: 8 }],
      [encodeDone('refused', 9), { kind: 'refused', seq: 9 }],
      [
        encodeMeta({ lastSeq: 9, dropped: 1, refused: 2 }),
        { kind: 'meta', meta: { lastSeq: 9, dropped: 1, refused: 2 } },
      ],
    ] as const) {
      expect(text.endsWith('\n')).toBe(true);
      expect(decodeLine(text.slice(0, -1))).toEqual({ ok: true, line });
    }
  });

  it('reads the meta of files written before issue 10 (no refused)', () => {
    expect(decodeLine('{"meta":{"lastSeq":5,"dropped":2}}')).toEqual({
      ok: true,
      line: { kind: 'meta', meta: { lastSeq: 5, dropped: 2, refused: 0 } },
    });
  });

  // Issue 10: each of these broke start-up or delivery silently.
  it.each([
    ['1', '1', 'not a JSON object'],
    ['null', 'null', 'not a JSON object'],
    ['"ev"', '"ev"', 'not a JSON object'],
    ['[1]', '[1]', 'not a JSON object'],
    ['{"meta":null}', '{"meta":null}', 'meta: not an object'],
    ['{"meta":{"lastSeq":"9","dropped":0}}', '{"meta":{"lastSeq":"9","dropped":0}}', 'meta: bad numbers'],
    ['{"meta":{"lastSeq":1e300,"dropped":0}}', '{"meta":{"lastSeq":1e300,"dropped":0}}', 'meta: bad numbers'],
    ['{"meta":{"lastSeq":5,"dropped":-1}}', '{"meta":{"lastSeq":5,"dropped":-1}}', 'meta: bad numbers'],
    ['{"ack":"3"}', '{"ack":"3"}', 'ack: bad seq'],
    ['{"ack":-3}', '{"ack":-3}', 'ack: bad seq'],
    ['{"drop":1.5}', '{"drop":1.5}', 'drop: bad seq'],
    ['{"drop":9007199254740991}', '{"drop":9007199254740991}', 'drop: bad seq'],
    ['{"ev":null}', '{"ev":null}', 'event:'],
    ['{"ev":{"seq":3}}', '{"ev":{"seq":3}}', 'event: / must have required property'],
    ['event seq 1e300', ev({ seq: 1e300 }), 'event: /seq must be <='],
    ['event seq 2^53-1', ev({ seq: 2 ** 53 - 1 }), 'event: /seq must be <='],
    ['event seq 2^48+1', ev({ seq: MAX_SEQ + 1 }), 'event: /seq must be <='],
    ['event seq "7"', ev({ seq: '7' }), 'event: /seq must be integer'],
    ['event seq -7', ev({ seq: -7 }), 'event: /seq must be >='],
    ['event session 2^40', ev({ session: 2 ** 40 }), 'event: session out of range'],
    ['event with a bad device', ev({ device: { vid: 'x' } }), 'event:'],
    ['{"ev":{},"ack":1}', '{"ev":{},"ack":1}', 'not one record'],
    ['{"nope":1}', '{"nope":1}', 'unknown record'],
    ['{"ack":1', '{"ack":1', 'not JSON'],
  ])('rejects %s', (_name, raw, reason) => {
    const decoded = decodeLine(raw);
    expect(decoded.ok).toBe(false);
    expect(decoded.ok ? '' : decoded.reason).toContain(reason);
  });

  it('accepts the highest seq it hands out', () => {
    expect(decodeLine(ev({ seq: MAX_SEQ })).ok).toBe(true);
  });
});
