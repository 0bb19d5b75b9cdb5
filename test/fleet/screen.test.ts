/** The live painter: in-place redraw escapes, throttling, and no write when nothing changed. */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LiveScreen } from '../../src/fleet/screen.js';
import { FakeClock } from '../fakes/clock.js';

function capture() {
  const out = new PassThrough();
  const writes: string[] = [];
  out.on('data', (d: Buffer) => writes.push(d.toString()));
  return { out, writes };
}

describe('LiveScreen', () => {
  it('redraws in place at most 10 times a second and skips identical frames', async () => {
    const clock = new FakeClock();
    const { out, writes } = capture();
    let frame = 'a\nb';
    let renders = 0;
    const screen = new LiveScreen(
      out,
      clock,
      () => {
        renders++;
        return frame;
      },
      { tty: true },
    );
    screen.start();
    await clock.flush();
    expect(writes).toEqual(['\x1b[?1049h\x1b[?25l', '\x1b[Ha\x1b[K\nb\x1b[K\x1b[J']);
    for (let i = 0; i < 100; i++) {
      frame = `a\n${i}`;
      screen.invalidate();
    }
    await clock.flush();
    expect(renders).toBe(1); // everything coalesced into the next tick
    await clock.advance(100);
    expect(renders).toBe(2);
    expect(writes.at(-1)).toBe('\x1b[Ha\x1b[K\n99\x1b[K\x1b[J');
    const count = writes.length;
    screen.invalidate();
    await clock.advance(100);
    expect(writes.length).toBe(count); // unchanged frame: nothing written
    screen.stop();
    await clock.flush();
    expect(writes.at(-1)).toBe('\x1b[?25h\x1b[?1049la\n99\n');
    expect(clock.pendingCount).toBe(0);
  });

  it('appends plain frames at most once a second without a TTY', async () => {
    const clock = new FakeClock();
    const { out, writes } = capture();
    let n = 0;
    const screen = new LiveScreen(out, clock, () => `frame ${n}`, { tty: false });
    screen.start();
    n = 1;
    screen.invalidate();
    await clock.advance(999);
    expect(writes).toEqual(['frame 0\n\n']);
    await clock.advance(1);
    expect(writes).toEqual(['frame 0\n\n', 'frame 1\n\n']);
    screen.stop();
    expect(writes.join('')).not.toContain('\x1b');
  });
});
