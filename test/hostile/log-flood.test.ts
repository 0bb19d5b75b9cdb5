/**
 * Issue 12, "Log floods", replayed on a fake clock: a driver whose probe fails at once (498 lines in 25 s
 * measured with the real CLI), and one that throws a 1 MB message on every attempt (8.4 MB in 50 s). The
 * logger is the real one (src/log.ts) writing JSON lines to memory; the session manager and the agent's
 * log feature (src/agent/features/log.ts) are the real ones too.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Bus } from '../../src/agent/bus.js';
import { logLines } from '../../src/agent/features/log.js';
import type { FeatureContext } from '../../src/agent/features.js';
import * as logModule from '../../src/log.js';
import { createLogger, type Logger } from '../../src/log.js';
import type { SessionDriver } from '../../src/session/drivers/types.js';
import { createSessionManager } from '../../src/session/manager.js';
import { FakeClock } from '../fakes/clock.js';

type Line = { level: number; msg: string; repeated?: number } & Record<string, unknown>;

async function memoryLogger(clock: FakeClock): Promise<{ log: Logger; lines: Line[]; bytes: () => number }> {
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      raw.push(String(chunk));
      cb();
    },
  });
  // The clock option is how the repeat windows follow fake time (ignored by a logger without them).
  const log = await createLogger({ level: 'info', destination: sink, clock } as Parameters<
    typeof createLogger
  >[0]);
  const lines: Line[] = [];
  const view = new Proxy(lines, {
    get(target, prop, receiver) {
      if (target.length !== raw.length) {
        target.length = 0;
        for (const r of raw) for (const l of r.split('\n')) if (l) target.push(JSON.parse(l) as Line);
      }
      return Reflect.get(target, prop, receiver);
    },
  });
  return { log, lines: view, bytes: () => raw.reduce((n, r) => n + r.length, 0) };
}

// Optional so this replay also runs (and fails on its assertions) against code from before the guard.
const flushRepeats = (log: Logger) =>
  (logModule as { flushRepeats?: (l: Logger) => void }).flushRepeats?.(log);

const device = { key: 'serial:S', vid: '1209', pid: '0001', serial: 'S', bus: 1, address: 4, devNode: '/x' };

/** The session manager and the agent's log feature on one bus: what the agent runs for a target. */
function runTarget(driver: SessionDriver, clock: FakeClock, log: Logger) {
  const bus = new Bus(log);
  const stops: (() => unknown)[] = [];
  const ctx = {
    log,
    on: (event: never, fn: never) => bus.on('log', event, fn),
    onStop: (fn: () => unknown) => void stops.push(fn),
  } as unknown as FeatureContext;
  void logLines().start(ctx);
  const sessions = createSessionManager({
    targets: [{ vid: '1209', pid: '0001' }],
    driver,
    clock,
    log: log.child({ module: 'session' }),
    emit: bus.sessionSink(),
  });
  sessions.start([device]);
  return async () => {
    await sessions.stop();
    for (const fn of stops) fn();
  };
}

describe('log floods (issue 12)', () => {
  it('summarises a driver whose probe fails at once instead of logging every cycle', async () => {
    const clock = new FakeClock();
    const { log, lines } = await memoryLogger(clock);
    let cycles = 0;
    const driver: SessionDriver = {
      name: 'probefail',
      probeIntervalMs: 50,
      open: async () => ({}),
      probe: async () => {
        cycles++;
        throw Object.assign(new Error('device stopped answering'), { code: 'REPLUG_USB_IO' });
      },
      close: async () => {},
    };
    const stop = runTarget(driver, clock, log);
    for (let t = 0; t < 120_000; t += 50) await clock.advance(50);
    await stop();
    flushRepeats(log);
    expect(cycles).toBeGreaterThan(100);
    // Unguarded this is six lines per cycle; guarded, a burst per template and one summary per minute.
    expect(lines.length).toBeLessThan(120);
    const summaries = lines.filter((l) => typeof l.repeated === 'number');
    expect(summaries.length).toBeGreaterThan(0);
    expect(summaries[0]?.msg).toMatch(/^same (line|warning|error) ×\d+ in the last minute: /);
    // Nothing is lost from the count: per template, lines written + lines summarised = cycles seen.
    const probeFailed = lines.filter((l) => /liveness probe failed/.test(l.msg));
    const written = probeFailed.filter((l) => l.repeated === undefined).length;
    const counted = probeFailed.reduce((n, l) => n + (l.repeated ?? 0), 0);
    expect(written + counted).toBe(cycles);
  });

  it('cuts a 1 MB driver error in every line, saying how much was cut', async () => {
    const clock = new FakeClock();
    const { log, lines, bytes } = await memoryLogger(clock);
    const huge = 'E'.repeat(1024 * 1024);
    let attempts = 0;
    const driver: SessionDriver = {
      name: 'bigerr',
      open: async () => {
        attempts++;
        throw Object.assign(new Error(huge), { code: 'REPLUG_USB_IO' });
      },
      probe: async () => {},
      close: async () => {},
    };
    const stop = runTarget(driver, clock, log);
    for (let t = 0; t < 50_000; t += 250) await clock.advance(250);
    await stop();
    flushRepeats(log);
    expect(attempts).toBeGreaterThan(5);
    for (const l of lines)
      expect(JSON.stringify(l).length, JSON.stringify(l).slice(0, 300)).toBeLessThan(16_000);
    expect(bytes()).toBeLessThan(200_000);
    expect(lines.some((l) => /more characters cut\)/.test(JSON.stringify(l)))).toBe(true);
  });
});

describe('a logger at debug level', () => {
  it('writes every line (asking for debug is asking for all of them); long ones are still cut', async () => {
    const raw: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        raw.push(String(chunk));
        cb();
      },
    });
    const log = await createLogger({ level: 'debug', destination: sink });
    for (let i = 0; i < 50; i++) log.info(`device discovered: 1209:0001 at bus 1 address ${i + 2} port 1-1`);
    log.warn('x'.repeat(10_000));
    expect(raw).toHaveLength(51);
    expect(raw.at(-1)?.length).toBeLessThan(3000);
  });
});

describe('FloodGuard', () => {
  it('groups by template: numbers alone vary, IDs, ports and addresses written with dashes do not', async () => {
    const { template } = await import('../../src/log-flood.js');
    const a = template('session 1209:0001: attempt 17 failed: boom [REPLUG_USB_IO], retrying in 5000 ms');
    const b = template('session 1209:0001: attempt 18 failed: boom [REPLUG_USB_IO], retrying in 2500 ms');
    expect(a).toBe(b);
    expect(a).toContain('1209:0001');
    expect(template('device at bus 1 address 5 port 1-1.4')).toBe('device at bus # address # port 1-1.4');
    expect(template('session 1209:0002 up')).not.toBe(template('session 1209:0001 up'));
  });

  it('passes a burst, counts the rest, then allows one line per window until a quiet window', async () => {
    const { FloodGuard } = await import('../../src/log-flood.js');
    const clock = new FakeClock();
    const out: string[] = [];
    const guard = new FloodGuard(clock, (_l, _f, msg) => out.push(msg), { burst: 3, windowMs: 60_000 });
    const admitted = Array.from({ length: 10 }, (_, i) => guard.admit(40, `attempt ${i} failed`));
    expect(admitted.filter(Boolean)).toHaveLength(3);
    await clock.advance(60_000);
    expect(out).toEqual(['same warning ×7 in the last minute: attempt 9 failed']);
    // The template flooded: the next window lets one line through, then counts.
    expect([guard.admit(40, 'attempt 10 failed'), guard.admit(40, 'attempt 11 failed')]).toEqual([
      true,
      false,
    ]);
    await clock.advance(60_000);
    expect(out.at(-1)).toBe('same warning ×1 in the last minute: attempt 11 failed');
    // A window with one line only ends the flood: the burst is back after it.
    expect(guard.admit(40, 'attempt 12 failed')).toBe(true);
    await clock.advance(60_000);
    expect([1, 2, 3].map((i) => guard.admit(40, `attempt ${i} failed`))).toEqual([true, true, true]);
    // Debug lines are never held back; flush() writes what is pending at once.
    expect(guard.admit(20, 'x')).toBe(true);
    guard.admit(40, 'attempt 4 failed');
    guard.flush();
    expect(out.at(-1)).toMatch(/^same warning ×1 in the last \d+ s: attempt 4 failed$/);
    expect(clock.pendingCount).toBe(0);
  });
});
