import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import type { DetectionReport } from '../../src/events.js';
import type { UsbDevice } from '../../src/usb/types.js';
import { type UsbBusState, UsbWatcher } from '../../src/usb/watcher.js';
import { FakeClock } from '../fakes/clock.js';
import { FakeSource } from '../fakes/source.js';

const dev = (over: Partial<UsbDevice> = {}): UsbDevice => ({
  key: 'addr:1-5',
  vid: '1209',
  pid: '0001',
  bus: 1,
  address: 5,
  ...over,
});

function setup(settleMs = 3000) {
  const clock = new FakeClock();
  const devfs = new FakeSource('devfs', { clock });
  const sysfs = new FakeSource('sysfs', { clock });
  const nusb = new FakeSource('nusb', { clock });
  const watcher = new UsbWatcher({ sources: [devfs, sysfs, nusb], clock, settleMs });
  const log: string[] = [];
  const reports: DetectionReport[] = [];
  const bus: UsbBusState[] = [];
  watcher.on('device.added', ({ device, source }) => log.push(`added ${device.key} by ${source}`));
  watcher.on('device.removed', ({ device, source }) => log.push(`removed ${device.key} by ${source}`));
  watcher.on('device.detection', (r) => reports.push(r));
  watcher.on('usb.bus', (b) => bus.push(b));
  return { clock, devfs, sysfs, nusb, watcher, log, reports, bus };
}

describe('UsbWatcher', () => {
  let stopMe: UsbWatcher | undefined;
  afterEach(async () => {
    await stopMe?.stop();
    stopMe = undefined;
  });

  it('emits one device.added for the first source and reports the others with their delay', async () => {
    const t = setup();
    stopMe = t.watcher;
    await t.watcher.start();
    t.devfs.add(dev());
    await t.clock.advance(40);
    t.nusb.add(dev({ manufacturer: 'from-nusb', product: 'nusb name' }));
    await t.clock.advance(700);
    t.sysfs.add(dev({ serial: 'S1', product: 'Probe', portPath: '1-1', key: 'serial:S1' }));
    expect(t.log).toEqual(['added addr:1-5 by devfs']);
    // Identity merged; sysfs wins for strings, and the key follows the serial.
    expect(t.watcher.current()).toEqual([
      expect.objectContaining({
        serial: 'S1',
        product: 'Probe',
        manufacturer: 'from-nusb',
        portPath: '1-1',
        key: 'serial:S1',
      }),
    ]);
    expect(t.reports).toEqual([]);
    await t.clock.advance(2260);
    expect(t.reports).toEqual([
      {
        kind: 'added',
        key: 'serial:S1',
        vid: '1209',
        pid: '0001',
        bus: 1,
        address: 5,
        first: 'devfs',
        latencyMs: { devfs: 0, nusb: 40, sysfs: 740 },
        missedBy: [],
      },
    ]);
  });

  it('reports which active sources missed a device, and counts it', async () => {
    const t = setup();
    stopMe = t.watcher;
    await t.watcher.start();
    t.sysfs.add(dev());
    await t.clock.advance(3000);
    expect(t.reports[0]).toMatchObject({ first: 'sysfs', missedBy: ['devfs', 'nusb'] });
    t.sysfs.remove(dev());
    t.devfs.remove(dev()); // never claimed it: ignored
    await t.clock.advance(3000);
    expect(t.reports[1]).toMatchObject({ kind: 'removed', first: 'sysfs', latencyMs: { sysfs: 0 } });
    expect(t.watcher.stats()).toMatchObject({
      sysfs: { seen: 2, first: 2, missed: 0, status: 'active' },
      devfs: { seen: 0, missed: 2 },
    });
  });

  it('de-duplicates removal and records its latency per source', async () => {
    const t = setup();
    stopMe = t.watcher;
    await t.watcher.start();
    t.devfs.add(dev());
    t.sysfs.add(dev());
    await t.clock.advance(3000);
    t.devfs.remove(dev());
    await t.clock.advance(900);
    t.sysfs.remove(dev());
    expect(t.log).toEqual(['added addr:1-5 by devfs', 'removed addr:1-5 by devfs']);
    expect(t.watcher.current()).toEqual([]);
    await t.clock.advance(2100);
    expect(t.reports[1]).toMatchObject({
      kind: 'removed',
      latencyMs: { devfs: 0, sysfs: 900 },
      missedBy: ['nusb'],
    });
    expect(t.watcher.stats().sysfs).toMatchObject({ seen: 2, meanLatencyMs: 450, maxLatencyMs: 900 });
  });

  it('ignores a lagging source that still sees an instance the fast source reported gone', async () => {
    const t = setup();
    stopMe = t.watcher;
    await t.watcher.start();
    t.devfs.add(dev());
    t.devfs.remove(dev());
    t.sysfs.add(dev()); // rescan landed between node removal and sysfs entry removal
    await t.clock.advance(1000);
    t.sysfs.remove(dev());
    expect(t.log).toEqual(['added addr:1-5 by devfs', 'removed addr:1-5 by devfs']);
    await t.clock.advance(2000);
    // Late news of the same instance: recorded as a late sighting of both its add and its removal.
    expect(t.reports.map((r) => [r.kind, r.latencyMs])).toEqual([
      ['added', { devfs: 0, sysfs: 0 }],
      ['removed', { devfs: 0, sysfs: 1000 }],
    ]);
    expect(t.watcher.stats().sysfs).toMatchObject({ seen: 2, stale: 0 });
  });

  it('treats the same address coming back after a removal as a new instance (address wrap)', async () => {
    const t = setup(100);
    stopMe = t.watcher;
    await t.watcher.start();
    t.devfs.add(dev());
    t.sysfs.add(dev());
    t.devfs.remove(dev());
    t.devfs.add(dev({ pid: '0002' }));
    // sysfs's late removal belongs to the first instance: it must not remove the second.
    t.sysfs.remove(dev());
    expect(t.log).toEqual([
      'added addr:1-5 by devfs',
      'removed addr:1-5 by devfs',
      'added addr:1-5 by devfs',
    ]);
    expect(t.watcher.current().map((d) => d.pid)).toEqual(['0002']);
    await t.clock.advance(100);
    expect(t.reports.find((r) => r.kind === 'removed')?.latencyMs).toEqual({ devfs: 0, sysfs: 0 });
  });

  it('says once that there is no USB bus, then once that it appeared, and devices flow', async () => {
    const clock = new FakeClock();
    const noBus = {
      state: 'unavailable' as const,
      code: ErrorCodes.NO_USB_BUS,
      reason: 'no USB bus on this host',
    };
    const devfs = new FakeSource('devfs', { clock, initialStatus: noBus });
    const sysfs = new FakeSource('sysfs', { clock, initialStatus: noBus });
    const nusb = new FakeSource('nusb', {
      clock,
      initialStatus: { state: 'unavailable', code: ErrorCodes.SOURCE_UNAVAILABLE, reason: 'disabled' },
    });
    const uevent = new FakeSource('uevent', { clock }); // active without a bus: it hears the kernel
    const watcher = new UsbWatcher({ sources: [devfs, sysfs, nusb, uevent], clock });
    stopMe = watcher;
    const bus: UsbBusState[] = [];
    watcher.on('usb.bus', (b) => bus.push(b));
    await watcher.start();
    devfs.status(noBus);
    sysfs.status(noBus);
    expect(bus).toEqual([{ present: false, reason: 'no USB bus on this host' }]);
    devfs.status({ state: 'active' });
    sysfs.status({ state: 'active' });
    devfs.add(dev());
    expect(bus).toEqual([{ present: false, reason: 'no USB bus on this host' }, { present: true }]);
    expect(watcher.current()).toHaveLength(1);
  });

  it('keeps running when a source throws on start or a listener throws', async () => {
    const clock = new FakeClock();
    const good = new FakeSource('devfs', { clock });
    const bad = new FakeSource('nusb', { clock });
    bad.start = async () => {
      throw new Error('native binding missing');
    };
    const errors: unknown[] = [];
    const watcher = new UsbWatcher({ sources: [good, bad], clock, onListenerError: (e) => errors.push(e) });
    stopMe = watcher;
    watcher.on('device.added', () => {
      throw new Error('listener bug');
    });
    await watcher.start();
    expect(watcher.sourceStatus().nusb).toMatchObject({
      state: 'unavailable',
      code: ErrorCodes.SOURCE_UNAVAILABLE,
      reason: 'nusb source failed to start: native binding missing',
    });
    good.add(dev());
    expect(errors).toHaveLength(1);
    expect(watcher.current()).toHaveLength(1);
  });

  it('releases timers and stops sources on stop', async () => {
    const t = setup();
    await t.watcher.start();
    t.devfs.add(dev());
    t.devfs.remove(dev());
    expect(t.clock.pendingCount).toBe(2);
    await t.watcher.stop();
    expect(t.clock.pendingCount).toBe(0);
    expect([t.devfs, t.sysfs, t.nusb].map((s) => s.running)).toEqual([false, false, false]);
    t.devfs.add(dev({ address: 9 }));
    expect(t.watcher.current()).toEqual([]);
  });
});

describe('UsbWatcher start-up listing', () => {
  it("keeps devices listed by the sources' first scans out of detection reports and latency counters", async () => {
    const clock = new FakeClock();
    const devfs = new FakeSource('devfs', { clock, initialStatus: { state: 'starting' } });
    const sysfs = new FakeSource('sysfs', { clock, initialStatus: { state: 'starting' } });
    const watcher = new UsbWatcher({ sources: [devfs, sysfs], clock, settleMs: 1000 });
    const reports: DetectionReport[] = [];
    watcher.on('device.detection', (r) => reports.push(r));
    await watcher.start();
    // First scans: sysfs lists the device 900 ms after devfs did; that gap is scan order, not detection.
    devfs.add(dev());
    await clock.advance(900);
    sysfs.add(dev());
    devfs.status({ state: 'active' });
    sysfs.status({ state: 'active' });
    await clock.advance(2000);
    expect(watcher.current()).toHaveLength(1);
    expect(reports).toEqual([]);
    expect(watcher.stats().sysfs).toMatchObject({ seen: 0, first: 0, missed: 0, maxLatencyMs: 0 });

    // A real plug after start is reported and counted.
    devfs.add(dev({ address: 6, key: 'addr:1-6' }));
    await clock.advance(30);
    sysfs.add(dev({ address: 6, key: 'addr:1-6' }));
    await clock.advance(2000);
    expect(reports).toHaveLength(1);
    expect(reports[0]!.latencyMs).toEqual({ devfs: 0, sysfs: 30 });
    expect(watcher.stats().sysfs).toMatchObject({ seen: 1, maxLatencyMs: 30 });
    await watcher.stop();
  });
});

describe('UsbWatcher.rescan()', () => {
  it('names only the sources that re-listed, after their listings ended', async () => {
    const clock = new FakeClock();
    const order: string[] = [];
    /** A source whose rescan() adds what its listing found, or rejects as a source that cannot list. */
    class Listing extends FakeSource {
      constructor(
        name: 'devfs' | 'nusb',
        private readonly outcome: 'lists' | 'cannot',
      ) {
        super(name, { clock });
      }
      async rescan(): Promise<void> {
        await Promise.resolve();
        if (this.outcome === 'cannot') throw new Error('not listening');
        this.add(dev({ address: 9, key: 'addr:1-9' }));
        order.push(`${this.name} listed`);
      }
    }
    const sources = [new Listing('devfs', 'lists'), new FakeSource('uevent'), new Listing('nusb', 'cannot')];
    const watcher = new UsbWatcher({ sources, clock });
    await watcher.start();
    try {
      expect(await watcher.rescan()).toEqual(['devfs']); // uevent has no listing; nusb could not list
      expect(order).toEqual(['devfs listed']);
      expect(watcher.current().map((d) => d.key)).toEqual(['addr:1-9']);
    } finally {
      await watcher.stop();
    }
  });
});

describe('UsbWatcher, an instance id reused inside the settle window', () => {
  it('reports both removals when the same id goes twice before the first report (storm test: 1967 of 2000)', async () => {
    const t = setup(200);
    await t.watcher.start();
    try {
      t.devfs.add(dev());
      t.devfs.remove(dev());
      // Addresses come back (the fake tree wraps after 127): the same bus-address plugs and goes again
      // before the first removal's window closed, as when timers run late under load.
      await t.clock.advance(50);
      t.devfs.add(dev());
      t.devfs.remove(dev());
      await t.clock.advance(1000);
      expect(t.reports.filter((r) => r.kind === 'removed')).toHaveLength(2);
      expect(t.reports.filter((r) => r.kind === 'added')).toHaveLength(2);
    } finally {
      await t.watcher.stop();
    }
  });
});
