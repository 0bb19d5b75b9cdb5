import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../src/errors.js';
import {
  fromNusb,
  type NusbDevice,
  type NusbListener,
  NusbSource,
  type UsbModule,
} from '../../../src/usb/sources/nusb.js';
import { FakeClock } from '../../fakes/clock.js';
import { FakeUsbTree } from '../../fakes/usb-tree.js';
import { Recorder } from '../recorder.js';

/** Stands in for usb v3's `usb` object; records listener calls so tests can prove the no-bus guard. */
class FakeUsb implements UsbModule {
  devices: NusbDevice[] = [];
  listeners = new Map<string, Set<NusbListener>>();
  addCalls = 0;
  listCalls = 0;
  failGetDevices = false;
  /** While set, getDevices() lists at once but answers only when the test calls release(). */
  private gate: Promise<void> | undefined;
  private open = () => {};
  hold() {
    this.gate = new Promise((r) => {
      this.open = r;
    });
  }
  release() {
    this.gate = undefined;
    this.open();
  }
  async getDevices() {
    this.listCalls++;
    if (this.failGetDevices) throw new Error('No such file or directory (os error 2)');
    const listed = [...this.devices];
    await this.gate;
    return listed;
  }
  addEventListener(type: string, l: NusbListener) {
    this.addCalls++;
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type)?.add(l);
  }
  removeEventListener(type: string, l: NusbListener) {
    this.listeners.get(type)?.delete(l);
  }
  get listenerTotal() {
    return [...this.listeners.values()].reduce((n, s) => n + s.size, 0);
  }
  fire(type: 'connect' | 'disconnect', device: NusbDevice) {
    for (const l of this.listeners.get(type) ?? []) l({ device });
  }
}

const probe: NusbDevice = {
  vendorId: 0x1209,
  productId: 0x8566,
  bus: '1',
  address: 7,
  ports: [1, 4],
  speed: 'high',
  deviceClass: 0xef,
  deviceVersionMajor: 12,
  deviceVersionMinor: 3,
  deviceVersionSubminor: 4,
  serialNumber: 'SN1',
  manufacturerName: 'pid.codes',
  productName: null,
};

describe('NusbSource', () => {
  let tree: FakeUsbTree | undefined;
  let source: NusbSource | undefined;
  afterEach(async () => {
    await source?.stop();
    await tree?.cleanup();
    source = undefined;
    tree = undefined;
  });

  it('maps a usb v3 device to UsbDevice (unsigned hex ids, port path, speed, bcdDevice)', () => {
    expect(fromNusb(probe, '/dev')).toEqual({
      key: 'serial:SN1',
      vid: '1209',
      pid: '8566',
      bus: 1,
      address: 7,
      portPath: '1-1.4',
      speed: '480',
      bcdDevice: '1234',
      deviceClass: 'ef',
      serial: 'SN1',
      manufacturer: 'pid.codes',
      devNode: '/dev/bus/usb/001/007',
    });
  });

  it('never adds a listener while the bus is missing, and starts when it appears', async () => {
    tree = await FakeUsbTree.create({ bus: false });
    const usb = new FakeUsb();
    const clock = new FakeClock();
    source = new NusbSource({ sysfsRoot: tree.sysfsRoot, load: async () => usb, clock, busPollMs: 500 });
    const rec = new Recorder();
    await source.start(rec);
    await clock.advance(2000);
    expect(usb.addCalls).toBe(0); // usb@3.1.0 would crash Node here
    expect(rec.statuses.filter((s) => s.state === 'unavailable')).toEqual([
      expect.objectContaining({ code: ErrorCodes.NO_USB_BUS }),
    ]);
    usb.devices = [probe];
    await tree.createBus();
    await clock.advance(500);
    await source.idle(); // the check does real fs I/O: the fake clock's flush may not cover it under load
    expect(usb.listenerTotal).toBe(2);
    expect(rec.statuses.at(-1)?.state).toBe('active');
    expect(rec.summary()).toEqual(['added 1-7']);
    usb.fire('connect', { ...probe, address: 8 });
    usb.fire('disconnect', probe);
    expect(rec.summary()).toEqual(['added 1-7', 'added 1-8', 'removed 1-7']);
    // Bus gone again: listeners off, devices removed, one status.
    await tree.removeBus();
    await clock.advance(500);
    await source.idle();
    expect(usb.listenerTotal).toBe(0);
    expect(rec.summary().slice(3)).toEqual(['removed 1-8']);
    await source.stop();
    expect(clock.pendingCount).toBe(0);
  });

  it('is unavailable, not fatal, when the package cannot be loaded', async () => {
    const clock = new FakeClock();
    source = new NusbSource({
      load: async () => {
        throw new Error('Cannot find native binding\nlong stack');
      },
      clock,
    });
    const rec = new Recorder();
    await source.start(rec);
    expect(rec.statuses.at(-1)).toEqual({
      state: 'unavailable',
      code: ErrorCodes.SOURCE_UNAVAILABLE,
      reason: 'the usb package could not be loaded: Cannot find native binding',
    });
    expect(clock.pendingCount).toBe(0);
    expect(await source.list()).toEqual([]);
  });

  it('reports a failing getDevices as unavailable, drops its listeners, and retries', async () => {
    tree = await FakeUsbTree.create();
    const usb = new FakeUsb();
    usb.failGetDevices = true;
    const clock = new FakeClock();
    source = new NusbSource({ sysfsRoot: tree.sysfsRoot, load: async () => usb, clock, busPollMs: 100 });
    const rec = new Recorder();
    await source.start(rec);
    expect(rec.statuses.at(-1)).toMatchObject({ state: 'unavailable', code: ErrorCodes.SOURCE_UNAVAILABLE });
    expect(usb.listenerTotal).toBe(0);
    usb.failGetDevices = false;
    await clock.advance(100);
    await source.idle();
    expect(rec.statuses.at(-1)?.state).toBe('active');
  });

  it('with the real usb package on a host without a bus: says so and does not crash', async () => {
    tree = await FakeUsbTree.create({ bus: false });
    const clock = new FakeClock();
    source = new NusbSource({ sysfsRoot: tree.sysfsRoot, clock });
    const rec = new Recorder();
    await source.start(rec);
    const last = rec.statuses.at(-1);
    // Either the binary loads (no bus -> NO_USB_BUS) or it does not (-> SOURCE_UNAVAILABLE); never a crash.
    expect(last?.state).toBe('unavailable');
    expect([ErrorCodes.NO_USB_BUS, ErrorCodes.SOURCE_UNAVAILABLE]).toContain(
      last?.state === 'unavailable' ? last.code : '',
    );
    await new Promise((r) => setTimeout(r, 50)); // an unhandled rejection would fail the run here
  });

  describe('rescan()', () => {
    async function started() {
      tree = await FakeUsbTree.create();
      const usb = new FakeUsb();
      usb.devices = [probe];
      const clock = new FakeClock();
      source = new NusbSource({ sysfsRoot: tree.sysfsRoot, load: async () => usb, clock, busPollMs: 500 });
      const rec = new Recorder();
      await source.start(rec);
      expect(rec.summary()).toEqual(['added 1-7']);
      return { usb, rec, source };
    }

    it('reports what the events missed: an add never announced, a removal never announced', async () => {
      const { usb, rec, source } = await started();
      // No udevd in this namespace: the package lists the new device but never fires connect/disconnect.
      usb.devices = [{ ...probe, address: 9, serialNumber: 'SN9' }];
      await source.rescan();
      expect(rec.summary()).toEqual(['added 1-7', 'removed 1-7', 'added 1-9']);
      expect(rec.events[1]?.device).toMatchObject({ serial: 'SN1', key: 'serial:SN1' });
      expect(rec.events[2]?.device).toMatchObject({ serial: 'SN9', portPath: '1-1.4' });
      await source.rescan(); // nothing changed: nothing reported
      expect(rec.summary()).toHaveLength(3);
      usb.fire('disconnect', { ...probe, address: 9 }); // the event still works, once
      expect(rec.summary().slice(3)).toEqual(['removed 1-9']);
    });

    it('resolves only once the listing answered, and does not undo what events said meanwhile', async () => {
      const { usb, rec, source } = await started();
      usb.hold();
      let resolved = false;
      const rescan = source.rescan().then(() => {
        resolved = true;
      });
      // The listing was taken with 1-7 only; while it is in flight, 1-8 connects and 1-7 leaves.
      usb.fire('connect', { ...probe, address: 8, serialNumber: 'SN8' });
      usb.fire('disconnect', probe);
      await Promise.resolve();
      expect(usb.listCalls).toBe(2);
      expect(resolved).toBe(false);
      usb.release();
      await rescan;
      // 1-8 is not removed (the listing predates it), 1-7 is not added again (the listing predates that).
      expect(rec.summary()).toEqual(['added 1-7', 'added 1-8', 'removed 1-7']);
    });

    it('calls while one lists share the next listing, which begins after them', async () => {
      const { usb, rec, source } = await started();
      usb.hold();
      const first = source.rescan();
      usb.devices = [probe, { ...probe, address: 10, serialNumber: 'SN10' }];
      const second = source.rescan();
      const third = source.rescan();
      usb.release();
      await Promise.all([first, second, third]);
      expect(usb.listCalls).toBe(3); // start, the first, and one shared by the second and third
      expect(rec.summary()).toEqual(['added 1-7', 'added 1-10']);
    });

    it('rejects when it cannot list (getDevices failing, package not loaded); without a bus it finds nothing', async () => {
      const { usb, rec, source } = await started();
      usb.failGetDevices = true;
      await expect(source.rescan()).rejects.toMatchObject({ code: ErrorCodes.SOURCE_UNAVAILABLE });
      expect(rec.summary()).toEqual(['added 1-7']); // a failed listing removes nothing
      const others: NusbSource[] = [];
      const another = async (load: () => Promise<UsbModule>) => {
        const s = new NusbSource({ sysfsRoot: tree?.sysfsRoot, load, clock: new FakeClock() });
        others.push(s);
        const r = new Recorder();
        await s.start(r);
        return { s, r };
      };
      try {
        // The bus is there but the first getDevices failed: not listening until the next bus check.
        const failing = await another(async () => usb);
        expect(failing.r.statuses.at(-1)).toMatchObject({ code: ErrorCodes.SOURCE_UNAVAILABLE });
        await expect(failing.s.rescan()).rejects.toMatchObject({ code: ErrorCodes.SOURCE_UNAVAILABLE });
        const broken = await another(async () => {
          throw new Error('Cannot find native binding');
        });
        await expect(broken.s.rescan()).rejects.toMatchObject({ code: ErrorCodes.SOURCE_UNAVAILABLE });
        usb.failGetDevices = false;
        await tree?.removeBus();
        const adds = usb.addCalls;
        const noBus = await another(async () => usb);
        expect(noBus.r.statuses.at(-1)).toMatchObject({ code: ErrorCodes.NO_USB_BUS });
        await noBus.s.rescan(); // looked: no bus, so nothing there (as devfs and sysfs find)
        expect(noBus.r.events).toEqual([]);
        expect(usb.addCalls).toBe(adds); // no listener added without a bus, rescan or not (usb@3.1.0 crash)
      } finally {
        for (const s of others) await s.stop();
      }
    });
  });
});
