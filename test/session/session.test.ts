import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { AgentEventName, AgentEvents } from '../../src/events.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { type EmitFn, Session, type SessionOptions } from '../../src/session/session.js';
import type { TargetSpec } from '../../src/usb/ids.js';
import { FakeClock } from '../fakes/clock.js';
import { device, FakeDriver, type FakeHandle } from './fake-driver.js';

type Recorded = { [K in AgentEventName]: [K, AgentEvents[K][0]] }[AgentEventName];

function setup(
  over: Partial<SessionOptions<FakeHandle>> = {},
  target: TargetSpec = { vid: '1209', pid: '0001' },
) {
  const clock = new FakeClock();
  const driver = new FakeDriver(clock);
  const events: Recorded[] = [];
  const emit: EmitFn = (name, ...args) => events.push([name, args[0]] as Recorded);
  const session = new Session<FakeHandle>({ target, driver, clock, log: silentLogger(), emit, ...over });
  const states = () =>
    events.filter((e) => e[0] === 'session.state').map((e) => (e[1] as { state: string }).state);
  const of = <K extends AgentEventName>(name: K) =>
    events.filter((e) => e[0] === name).map((e) => e[1] as AgentEvents[K][0]);
  return { clock, driver, events, session, states, of };
}

describe('Session', () => {
  it('goes up, down when the device is removed, and up again on replug with timings', async () => {
    const { clock, driver, session, states, of } = setup();
    driver.open_.push({ kind: 'ok', afterMs: 40 }, { kind: 'ok', afterMs: 25 });
    session.start([device(4)]);
    await clock.advance(40);
    expect(session.snapshot().state).toBe('up');

    session.deviceRemoved({ bus: 1, address: 4 });
    await clock.advance(0);
    expect(session.snapshot().state).toBe('waiting');
    expect(driver.openHandles.size).toBe(0);

    await clock.advance(1000);
    session.deviceAdded(device(5), clock.monotonic() - 10); // a source saw it 10 ms before we were told
    await clock.advance(25);
    expect(states()).toEqual(['starting', 'up', 'terminating', 'waiting', 'starting', 'up']);
    expect(of('reconnect.succeeded').map((e) => [e.durationMs, e.attempts, e.device.address])).toEqual([
      [40, 1, 4],
      [35, 1, 5],
    ]);
    const snap = session.snapshot();
    expect(snap.device?.address).toBe(5);
    expect(snap.stats).toMatchObject({ attempts: 2, ok: 2, failed: 0, reconnects: 1, p50Ms: 35, p95Ms: 40 });
    await session.stop();
    expect(clock.pendingCount).toBe(0);
  });

  it('retries a failing open with 250/500/1000 ms backoff, then reports the total duration', async () => {
    const { clock, driver, session, of } = setup();
    driver.open_.push(
      { kind: 'fail' },
      { kind: 'fail' },
      { kind: 'fail', code: 'REPLUG_USB_ACCESS' },
      { kind: 'ok' },
    );
    session.start([device(4)]);
    await clock.advance(0);
    expect(of('reconnect.failed').map((e) => e.retryInMs)).toEqual([250]);
    await clock.advance(249);
    expect(driver.opens).toBe(1);
    await clock.advance(1);
    expect(driver.opens).toBe(2);
    await clock.advance(500 + 1000);
    expect(session.snapshot().state).toBe('up');
    expect(of('reconnect.attempt').map((e) => e.attempt)).toEqual([1, 2, 3, 4]);
    expect(of('reconnect.failed').map((e) => [e.attempt, e.error.code, e.retryInMs])).toEqual([
      [1, 'REPLUG_USB_BUSY', 250],
      [2, 'REPLUG_USB_BUSY', 500],
      [3, 'REPLUG_USB_ACCESS', 1000],
    ]);
    expect(of('reconnect.succeeded')).toMatchObject([{ attempts: 4, durationMs: 1750 }]);
    expect(session.snapshot().stats).toMatchObject({
      attempts: 4,
      ok: 1,
      failed: 3,
      lastOutcome: 'ok',
      lastError: { code: 'REPLUG_USB_ACCESS' },
    });
    await session.stop();
    expect(clock.pendingCount).toBe(0);
  });

  it('closes the handle of an open that resolves after the device went away', async () => {
    const { clock, driver, session, states } = setup();
    driver.open_.push({ kind: 'late-ok', afterMs: 100 });
    session.start([device(4)]);
    await clock.advance(50);
    session.deviceRemoved({ bus: 1, address: 4 });
    await clock.advance(0);
    expect(session.snapshot().state).toBe('terminating');
    await clock.advance(50);
    expect(driver.closes).toBe(1);
    expect(driver.openHandles.size).toBe(0);
    expect(states()).toEqual(['starting', 'terminating', 'waiting']);
    expect(clock.pendingCount).toBe(0);
  });

  it('aborts a well-behaved open stuck in I/O when the device goes', async () => {
    const { clock, driver, session, states } = setup();
    driver.open_.push({ kind: 'hang' });
    session.start([device(4)]);
    await clock.advance(10);
    session.deviceRemoved({ bus: 1, address: 4 });
    await clock.advance(0);
    expect(states()).toEqual(['starting', 'terminating', 'waiting']);
    expect(driver.openHandles.size).toBe(0);
    expect(clock.pendingCount).toBe(0);
  });

  it('times out an open that ignores its signal and retries', async () => {
    const { clock, driver, session, of } = setup({ timeouts: { openTimeoutMs: 300 } });
    driver.open_.push({ kind: 'hang-deaf' });
    session.start([device(4)]);
    await clock.advance(300);
    expect(of('reconnect.failed')).toMatchObject([{ error: { code: 'REPLUG_USB_TIMEOUT' }, retryInMs: 250 }]);
    await clock.advance(250);
    expect(session.snapshot().state).toBe('up');
    await session.stop();
    expect(driver.openHandles.size).toBe(0);
    expect(clock.pendingCount).toBe(0);
  });

  it('treats a failing probe as a wedged device: close, back off, reopen', async () => {
    const { clock, driver, session, states, of } = setup();
    driver.probe_.push({ kind: 'ok' }, { kind: 'fail', code: 'REPLUG_USB_TIMEOUT' });
    session.start([device(4)]);
    await clock.advance(0);
    await clock.advance(2000); // two probes: ok, fail
    expect(driver.probes).toBe(2);
    expect(states()).toEqual(['starting', 'up', 'terminating', 'backoff']);
    await clock.advance(250);
    expect(states().at(-1)).toBe('up');
    expect(driver.opens).toBe(2);
    expect(driver.openHandles.size).toBe(1);
    expect(of('reconnect.succeeded').at(-1)?.durationMs).toBe(250);
    expect(session.snapshot().stats).toMatchObject({
      probeFailures: 1,
      lastError: { code: 'REPLUG_USB_TIMEOUT' },
    });
    await session.stop();
    expect(clock.pendingCount).toBe(0);
  });

  it('ends a probe stuck mid-transfer when the device is unplugged', async () => {
    const { clock, driver, session, states } = setup();
    driver.probe_.push({ kind: 'hang' });
    session.start([device(4)]);
    await clock.advance(1000);
    expect(driver.probes).toBe(1);
    session.deviceRemoved({ bus: 1, address: 4 });
    await clock.advance(0);
    expect(states()).toEqual(['starting', 'up', 'terminating', 'waiting']);
    expect(driver.openHandles.size).toBe(0);
    expect(clock.pendingCount).toBe(0);
    // The aborted probe settles after the session went down: an unplug, not a wedged device (lab finding).
    expect(session.snapshot().stats.probeFailures).toBe(0);
  });

  it('moves on after the close timeout and says so in the log', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const log = await createLogger({ level: 'warn', destination: sink });
    const { clock, driver, session, states } = setup({ log, timeouts: { closeTimeoutMs: 500 } });
    driver.close_.push({ kind: 'hang-deaf' });
    session.start([device(4)]);
    await clock.advance(0);
    session.deviceRemoved({ bus: 1, address: 4 });
    await clock.advance(499);
    expect(session.snapshot().state).toBe('terminating');
    await clock.advance(1);
    expect(states().at(-1)).toBe('waiting');
    const warn = lines.map((l) => JSON.parse(l)).find((l) => /close failed/.test(l.msg));
    expect(warn).toMatchObject({ code: 'REPLUG_USB_TIMEOUT', target: '1209:0001' });
    expect(clock.pendingCount).toBe(0);
  });

  it('matches the serial when the target has one and ignores other devices', async () => {
    const { clock, session } = setup({}, { vid: '1209', pid: '0001', serial: 'B' });
    session.start([device(4, { serial: 'A' }), device(6, { vid: '0403' }), device(5, { serial: 'B' })]);
    await clock.advance(0);
    expect(session.snapshot()).toMatchObject({
      state: 'up',
      present: 1,
      device: { serial: 'B', address: 5 },
    });
    await session.stop();
  });

  it('picks the earliest-seen match and falls back to another present one when it goes', async () => {
    const { clock, session, states } = setup();
    session.deviceAdded(device(9, { bus: 2 }), 5);
    session.deviceAdded(device(3, { bus: 1 }), 7);
    await clock.advance(0);
    expect(session.snapshot().device).toMatchObject({ bus: 2, address: 9 });
    session.deviceRemoved({ bus: 1, address: 3 }); // not the chosen one: nothing happens
    session.deviceAdded(device(3, { bus: 1 }), 8);
    await clock.advance(0);
    expect(states()).toEqual(['starting', 'up']);
    session.deviceRemoved({ bus: 2, address: 9 });
    await clock.advance(0);
    expect(states()).toEqual(['starting', 'up', 'terminating', 'starting', 'up']);
    expect(session.snapshot().device).toMatchObject({ bus: 1, address: 3 });
    await session.stop();
  });

  it('stops cleanly from every state and ignores devices afterwards', async () => {
    for (const script of ['up', 'backoff', 'starting', 'waiting'] as const) {
      const { clock, driver, session, states } = setup();
      if (script === 'backoff') driver.open_.push({ kind: 'fail' });
      if (script === 'starting') driver.open_.push({ kind: 'hang' });
      if (script !== 'waiting') session.start([device(4)]);
      await clock.advance(0);
      expect(session.snapshot().state).toBe(script);
      await session.stop();
      expect(states().at(-1)).toBe('stopped');
      expect(driver.openHandles.size).toBe(0);
      expect(clock.pendingCount).toBe(0);
      session.deviceAdded(device(7));
      await clock.advance(1000);
      expect(session.snapshot().state).toBe('stopped');
    }
  });

  it('applies configured jitter to the retry delay it reports and waits', async () => {
    const { clock, driver, session, of } = setup({ backoff: { jitter: 0.5 }, random: () => 1 });
    driver.open_.push({ kind: 'fail' });
    session.start([device(4)]);
    await clock.advance(0);
    expect(of('reconnect.failed')[0]?.retryInMs).toBe(125);
    await clock.advance(125);
    expect(session.snapshot().state).toBe('up');
    await session.stop();
  });

  it('keeps working when an event listener throws', async () => {
    const clock = new FakeClock();
    const driver = new FakeDriver(clock, 0); // probeIntervalMs 0: no probe timers at all
    const session = new Session<FakeHandle>({
      target: { vid: '1209', pid: '0001' },
      driver,
      clock,
      log: silentLogger(),
      emit: () => {
        throw new Error('listener bug');
      },
    });
    session.start([device(4)]);
    await clock.advance(0);
    expect(session.snapshot()).toMatchObject({ state: 'up', stats: { ok: 1 } });
    expect(clock.pendingCount).toBe(0);
    await session.stop();
    expect(driver.openHandles.size).toBe(0);
  });
});
