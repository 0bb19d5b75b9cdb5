import { describe, expect, it } from 'vitest';
import { runCommand } from '../../src/actions/command.js';
import { actionEnv } from '../../src/actions/env.js';
import { systemClock } from '../../src/util/clock.js';

const device = {
  key: 'serial:Z1',
  vid: '10c4',
  pid: 'ea60',
  serial: 'Z1',
  bus: 1,
  address: 7,
  portPath: '1-1.4',
  devNode: '/dev/bus/usb/001/007',
};

function collect() {
  const lines: string[] = [];
  const cuts: number[] = [];
  return {
    lines,
    cuts,
    line: (_s: string, t: string) => void lines.push(t),
    cut: (n: number) => void cuts.push(n),
  };
}

describe('action commands (real /bin/sh processes)', () => {
  it('run with the target facts in the environment', async () => {
    const out = collect();
    const res = await runCommand({
      command:
        'echo "$REPLUG_TARGET|$REPLUG_VID|$REPLUG_PID|$REPLUG_SERIAL|$REPLUG_BUS|$REPLUG_ADDRESS|$REPLUG_PORT|$REPLUG_DEVNODE|$REPLUG_EVENT"',
      env: actionEnv('10c4:ea60:Z1', 'up', device),
      timeoutMs: 10_000,
      clock: systemClock,
      ...out,
    });
    expect(res).toMatchObject({ outcome: 'ok', exitCode: 0 });
    expect(out.lines).toEqual(['10c4:ea60:Z1|10c4|ea60|Z1|1|7|1-1.4|/dev/bus/usb/001/007|up']);
  });

  it('a non-zero exit is failed with its code; stderr reaches the log too', async () => {
    const out = collect();
    const res = await runCommand({
      command: 'echo oops >&2; exit 3',
      env: {},
      timeoutMs: 10_000,
      clock: systemClock,
      ...out,
    });
    expect(res).toMatchObject({ outcome: 'failed', exitCode: 3 });
    expect(out.lines).toEqual(['oops']);
  });

  it('is killed, with its children, when it outlives the timeout', async () => {
    const out = collect();
    const res = await runCommand({
      command: 'sleep 60 & echo $!; wait',
      env: {},
      timeoutMs: 300,
      clock: systemClock,
      ...out,
    });
    expect(res.outcome).toBe('timeout');
    expect(res.signal).toBe('SIGTERM');
    const child = Number(out.lines[0]);
    expect(child).toBeGreaterThan(0);
    // The background sleep was in the killed group: it is gone (kill 0 throws ESRCH), or a zombie being reaped.
    await new Promise((r) => setTimeout(r, 100));
    let alive = true;
    try {
      process.kill(child, 0);
    } catch {
      alive = false;
    }
    if (alive) {
      const { readFileSync } = await import('node:fs');
      expect(readFileSync(`/proc/${child}/stat`, 'utf8').split(' ')[2]).toBe('Z');
    }
  });

  it('output is bounded: lines beyond the budget are counted, long lines cut', async () => {
    const out = collect();
    await runCommand({
      command: 'for i in $(seq 1 50); do echo line$i; done; head -c 2000 /dev/zero | tr "\\0" x',
      env: {},
      timeoutMs: 10_000,
      clock: systemClock,
      maxLines: 5,
      maxLineChars: 100,
      ...out,
    });
    expect(out.lines).toEqual(['line1', 'line2', 'line3', 'line4', 'line5']);
    expect(out.cuts).toEqual([46]);
  });
});
