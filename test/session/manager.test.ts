import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { AgentEvents } from '../../src/events.js';
import { silentLogger } from '../../src/log.js';
import { createSessionManager } from '../../src/session/manager.js';
import type { EmitFn } from '../../src/session/session.js';
import type { TargetState } from '../../src/session/target-state.js';
import { FakeClock } from '../fakes/clock.js';
import { device, FakeDriver } from './fake-driver.js';

function setup(
  targets = [
    { vid: '1209', pid: '0001' },
    { vid: '0403', pid: '6001', serial: 'FT1' },
  ],
) {
  const clock = new FakeClock();
  const driver = new FakeDriver(clock);
  const counts = new Map<string, number>();
  const durations: number[] = [];
  const emit: EmitFn = (name, ...args) => {
    const payload = args[0] as { state?: string; previous?: string; durationMs?: number };
    const key = name === 'session.state' ? `${name}:${payload.previous}->${payload.state}` : name;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    if (payload.durationMs !== undefined) durations.push(payload.durationMs);
  };
  const bus = new EventEmitter<AgentEvents>();
  const manager = createSessionManager({ targets, driver, clock, log: silentLogger(), emit });
  return { clock, driver, counts, durations, bus, manager };
}

const ftdi = (address: number, serial = 'FT1') => device(address, { vid: '0403', pid: '6001', serial });

describe('createSessionManager', () => {
  it('runs one session per target from one device stream and snapshots them in order', async () => {
    const { clock, bus, manager } = setup();
    manager.attach(bus);
    manager.start([device(4)]);
    bus.emit('device.added', { device: ftdi(7, 'OTHER'), source: 'devfs' });
    await clock.advance(0);
    expect(manager.snapshot().map((s) => [s.target, s.state])).toEqual([
      ['1209:0001', 'up'],
      ['0403:6001:FT1', 'waiting'],
    ]);
    bus.emit('device.added', { device: ftdi(8), source: 'sysfs' });
    bus.emit('device.removed', { device: device(4), source: 'devfs' });
    await clock.advance(0);
    expect(manager.get('0403:6001:FT1')).toMatchObject({ state: 'up', device: { address: 8 } });
    expect(manager.get('1209:0001')?.state).toBe('waiting');
    await manager.stop();
    expect(manager.snapshot().every((s) => s.state === 'stopped')).toBe(true);
    expect(bus.listenerCount('device.added') + bus.listenerCount('device.removed')).toBe(0);
    expect(clock.pendingCount).toBe(0);
  });

  it('a target named by its serial matches a device whose serial became known after its add', async () => {
    const { clock, manager } = setup([{ vid: '0403', pid: '6001', serial: 'FT1' }]);
    const bus = new EventEmitter<AgentEvents & { 'device.identified': AgentEvents['device.added'] }>();
    manager.attach(bus);
    manager.start([]);
    const { serial: _none, ...bare } = ftdi(9);
    bus.emit('device.added', { device: bare, source: 'uevent' }); // a uevent carries no strings
    await clock.advance(0);
    expect(manager.get('0403:6001:FT1')?.state).toBe('waiting');
    bus.emit('device.identified', { device: ftdi(9), source: 'devfs' });
    await clock.advance(0);
    expect(manager.get('0403:6001:FT1')).toMatchObject({ state: 'up', device: { address: 9 } });
    await manager.stop();
    expect(bus.listenerCount('device.identified')).toBe(0);
  });

  it('runs a single session for a target given twice', () => {
    const { manager } = setup([
      { vid: '1209', pid: '0001' },
      { vid: '1209', pid: '0001' },
    ]);
    expect(manager.snapshot()).toHaveLength(1);
  });

  it('survives a 1,000-cycle replug storm with every cycle accounted and nothing leaked', async () => {
    const { clock, driver, counts, durations, bus, manager } = setup();
    // Open takes 1..20 ms of fake time so the percentiles have something to summarise.
    for (let i = 0; i < 1000; i++) driver.open_.push({ kind: 'ok', afterMs: 1 + (i % 20) });
    manager.attach(bus);
    manager.start([]);
    for (let i = 0; i < 1000; i++) {
      // The kernel hands out a new address on every replug (wrapping within 2..127).
      const d = device(2 + (i % 120));
      bus.emit('device.added', { device: d, source: 'devfs' });
      await clock.advance(20);
      bus.emit('device.removed', { device: d, source: 'devfs' });
      await clock.advance(0);
    }
    expect(counts.get('reconnect.succeeded')).toBe(1000);
    expect(counts.get('session.state:starting->up')).toBe(1000);
    expect(counts.get('session.state:up->terminating')).toBe(1000);
    expect(counts.get('session.state:terminating->waiting')).toBe(1000);
    expect(counts.get('reconnect.failed')).toBeUndefined();
    expect(driver.opens).toBe(1000);
    expect(driver.closes).toBe(1000);
    expect(driver.openHandles.size).toBe(0);
    const snap = manager.get('1209:0001');
    expect(snap).toMatchObject({
      attempts: 1000,
      reconnects: { count: 1000, ok: 1000, failed: 0, p50Ms: 10, p95Ms: 19 },
    });
    expect(Math.max(...durations)).toBe(20);
    expect(clock.pendingCount).toBe(0);
    await manager.stop();
    expect(bus.listenerCount('device.added') + bus.listenerCount('device.removed')).toBe(0);
    expect(clock.pendingCount).toBe(0);
  });

  it('emits target.changed with the parsed target after every change of its retained state', async () => {
    const clock = new FakeClock();
    const driver = new FakeDriver(clock);
    const changed: TargetState[] = [];
    const emit: EmitFn = (name, ...args) => {
      if (name === 'target.changed') changed.push(args[0] as TargetState);
    };
    const manager = createSessionManager({
      targets: [{ vid: '0403', pid: '6001', serial: 'FT:1' }],
      driver,
      clock,
      log: silentLogger(),
      emit,
    });
    manager.start([device(9, { vid: '0403', pid: '6001', serial: 'FT:1' })]);
    await clock.advance(0);
    expect(changed.map((c) => c.state)).toEqual(['starting', 'up', 'up']); // starting, up, reconnect.succeeded
    expect(changed[1]).toMatchObject({ target: '0403:6001:FT:1', vid: '0403', pid: '6001', serial: 'FT:1' });
    expect(changed[2]?.reconnects).toMatchObject({ count: 1, ok: 1 });
    await manager.stop();
    expect(changed.at(-1)?.state).toBe('stopped');
  });
});
