/**
 * The agent's machinery on a fake clock: the bus (owners remove their listeners; a throwing listener is
 * logged once and breaks nothing), feature timers that survive exceptions (issue 12: the health timer died
 * of one), and the bounded stop (issue 12: SIGTERM waited for whatever hung).
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Bus } from '../../src/agent/bus.js';
import { type AgentParts, type Feature, startFeatures } from '../../src/agent/features.js';
import { Stopper } from '../../src/agent/stopper.js';
import { FakeClock } from '../fakes/clock.js';

function logged() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  return { log: pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l)) }), lines };
}

const device = { key: 'port:1-1', vid: '1209', pid: '0001', bus: 1, address: 2 };

describe('the bus', () => {
  it('delivers typed events; an owner removes all of its listeners at once', () => {
    const { log } = logged();
    const bus = new Bus(log);
    const got: string[] = [];
    bus.on('a', 'device.added', (e) => got.push(`a:${e.device.vid}`));
    bus.on('a', 'device.removed', () => got.push('a:removed'));
    bus.on('b', 'device.added', (e) => got.push(`b:${e.source}`));
    bus.emit('device.added', { device, source: 'devfs' });
    bus.off('a');
    bus.emit('device.added', { device, source: 'sysfs' });
    bus.emit('device.removed', { device, source: 'sysfs' });
    expect(got).toEqual(['a:1209', 'b:devfs', 'b:sysfs']);
    expect(bus.count('device.removed')).toBe(0);
  });

  it('the sessions hear of a device before the features that report it, whenever they attached', () => {
    const { log } = logged();
    const bus = new Bus(log);
    const got: string[] = [];
    bus.on('events', 'device.added', () => got.push('events'));
    bus.on('log', 'device.added', () => got.push('log'));
    const sessions = bus.devices('sessions');
    sessions.on('device.added', () => got.push('sessions'));
    sessions.on('device.removed', () => got.push('sessions:removed'));
    bus.on('events', 'device.removed', () => got.push('events:removed'));
    bus.emit('device.added', { device, source: 'devfs' });
    bus.emit('device.removed', { device, source: 'devfs' });
    expect(got).toEqual(['sessions', 'events', 'log', 'sessions:removed', 'events:removed']);
    sessions.off('device.added', () => undefined);
    bus.emit('device.added', { device, source: 'devfs' });
    expect(got.slice(5)).toEqual(['events', 'log']);
  });

  it('a throwing listener is logged once until it works again, and the others still run', () => {
    const { log, lines } = logged();
    const bus = new Bus(log);
    let fail = true;
    let others = 0;
    bus.on('broken', 'agent.ready', () => {
      if (fail) throw new Error('boom');
    });
    bus.on('fine', 'agent.ready', () => others++);
    for (let i = 0; i < 5; i++) bus.emit('agent.ready');
    fail = false;
    bus.emit('agent.ready');
    fail = true;
    bus.emit('agent.ready');
    expect(others).toBe(7);
    expect(lines.filter((l) => l.msg === 'broken failed on agent.ready')).toHaveLength(2);
  });
});

function parts(clock: FakeClock, log: AgentParts['log']): AgentParts {
  return {
    clock,
    log,
    bus: new Bus(log),
    config: { homeassistant: false, relay: false },
  } as unknown as AgentParts;
}

describe('features', () => {
  it('a timer whose work throws keeps ticking, says so once, and says when it works again', async () => {
    const clock = new FakeClock();
    const { log, lines } = logged();
    let ticks = 0;
    const ticker = (): Feature => ({
      name: 'ticker',
      start(ctx) {
        ctx.every(1000, 'the tick', () => {
          ticks++;
          if (ticks <= 3) throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
        });
      },
    });
    const stopper = new Stopper(clock, log, 5000);
    expect(await startFeatures([ticker], parts(clock, log), stopper)).toEqual(['ticker']);
    await clock.advance(5500);
    expect(ticks).toBe(5);
    expect(lines.filter((l) => l.msg === 'the tick failed; trying again every 1000 ms')).toHaveLength(1);
    expect(lines.filter((l) => l.msg === 'the tick works again')).toHaveLength(1);
    await stopper.stop();
    await clock.advance(5000);
    expect(ticks).toBe(5);
    expect(clock.pendingCount).toBe(0);
  });

  it("stop removes a feature's listeners and runs what it asked to release; disabled ones never start", async () => {
    const clock = new FakeClock();
    const { log } = logged();
    const p = parts(clock, log);
    const released: string[] = [];
    const listener = (): Feature => ({
      name: 'listener',
      start(ctx) {
        ctx.on('agent.ready', () => {});
        ctx.onStop(() => released.push('listener'));
      },
    });
    const off = (): Feature => ({ name: 'off', enabled: (c) => c.relay, start: () => {} });
    const stopper = new Stopper(clock, log, 5000);
    expect(await startFeatures([listener, off], p, stopper)).toEqual(['listener']);
    expect(p.bus.count('agent.ready')).toBe(1);
    await stopper.stop();
    expect(p.bus.count('agent.ready')).toBe(0);
    expect(released).toEqual(['listener']);
  });
});

describe('the bounded stop', () => {
  it('abandons a part that hangs after its bound, still stops the others, last first, within the total', async () => {
    const clock = new FakeClock();
    const { log, lines } = logged();
    const stopper = new Stopper(clock, log, 5000);
    const order: string[] = [];
    stopper.add('broker', () => void order.push('broker'));
    stopper.add('watcher', () => new Promise(() => order.push('watcher hangs')), 1500);
    stopper.add('sessions', () => void order.push('sessions'));
    let done = false;
    void stopper.stop().then(() => {
      done = true;
    });
    await clock.advance(1499);
    expect(done).toBe(false);
    await clock.advance(1);
    expect(done).toBe(true);
    expect(order).toEqual(['sessions', 'watcher hangs', 'broker']);
    expect(lines.map((l) => l.msg)).toContain('stop: watcher did not finish within 1500 ms; abandoned');
  });

  it('out of time: the rest is abandoned in one line', async () => {
    const clock = new FakeClock();
    const { log, lines } = logged();
    const stopper = new Stopper(clock, log, 2000);
    stopper.add('broker', () => undefined);
    stopper.add('mqtt', () => undefined);
    stopper.add('sessions', () => new Promise(() => {}), 3000);
    const stopped = stopper.stop();
    await clock.advance(2000);
    await stopped;
    expect(lines.map((l) => l.msg)).toEqual([
      'stop: sessions did not finish within 2000 ms; abandoned',
      'stop: out of time (2000 ms); abandoned mqtt, broker',
    ]);
    expect(stopper.stop()).toBe(stopped);
  });
});
