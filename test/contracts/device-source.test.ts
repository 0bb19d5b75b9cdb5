/**
 * One contract, run against every DeviceSource (the MQTT.js abstract-store habit; issue 13): devfs and
 * sysfs on a fake tree with real inotify, nusb with a fake `usb` module, uevent with a fake netlink
 * socket, and the test fake. Each must:
 *   - start without throwing, also where the host lacks what it needs (it says `unavailable` instead);
 *   - report a device plugged and unplugged as added then removed, `at` never going back;
 *   - release on stop every watch, timer and listener it holds;
 *   - emit nothing once stopped, whatever happens in the world afterwards.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DevfsSource } from '../../src/usb/sources/devfs.js';
import {
  type NusbDevice,
  type NusbListener,
  NusbSource,
  type UsbModule,
} from '../../src/usb/sources/nusb.js';
import { SysfsSource } from '../../src/usb/sources/sysfs.js';
import { UeventSource } from '../../src/usb/sources/uevent.js';
import type { DeviceSource, SourceEvent, SourceStatus } from '../../src/usb/types.js';
import { FakeClock } from '../fakes/clock.js';
import { FakeSource } from '../fakes/source.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';
import { FakeNetlinkSocket } from '../relay/fake-netlink.js';
import { usbDeviceUevent } from '../relay/usb-uevents.js';

interface Harness {
  source: DeviceSource;
  /** Makes one device appear where the source looks, and lets the source notice. */
  plug(): Promise<void>;
  unplug(): Promise<void>;
  /** Lets the source notice what changed (fake time, inotify latency). */
  settle(): Promise<void>;
  /** Watches, timers and listeners the source holds now. */
  held(): number;
  cleanup(): Promise<void>;
}

interface Implementation {
  name: string;
  /** A world where the source works. */
  make(): Promise<Harness>;
  /** A world that lacks what it needs (no bus, no binary, no socket). */
  lacking(): Promise<Harness>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fsWatches = () => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;

class FakeUsb implements UsbModule {
  devices: NusbDevice[] = [];
  listeners = new Map<string, Set<NusbListener>>();
  async getDevices() {
    return [...this.devices];
  }
  addEventListener(type: string, l: NusbListener) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type)?.add(l);
  }
  removeEventListener(type: string, l: NusbListener) {
    this.listeners.get(type)?.delete(l);
  }
  get total() {
    return [...this.listeners.values()].reduce((n, s) => n + s.size, 0);
  }
  fire(type: 'connect' | 'disconnect', device: NusbDevice) {
    for (const l of this.listeners.get(type) ?? []) l({ device });
  }
}

const nusbDevice: NusbDevice = { vendorId: 0x1209, productId: 1, bus: '1', address: 9, ports: [2] };

async function treeHarness(kind: 'devfs' | 'sysfs', bus = true): Promise<Harness> {
  const tree = await FakeUsbTree.create({ bus });
  const clock = new FakeClock();
  await sleep(20); // watches closed by an earlier test leave the handle list on the next tick
  const before = fsWatches();
  const source =
    kind === 'devfs'
      ? new DevfsSource({ devfsRoot: tree.devfsRoot, sysfsRoot: tree.sysfsRoot })
      : new SysfsSource({ sysfsRoot: tree.sysfsRoot, devfsRoot: tree.devfsRoot, intervalMs: 100, clock });
  const settle = async () => {
    await sleep(150); // inotify delivery
    await clock.advance(100); // a rescan
    await sleep(50);
  };
  return {
    source,
    plug: async () => void (await tree.plug({ vid: '1209', pid: '0001', serial: 'C1' })),
    unplug: () => tree.unplug(tree.devices()[0] as { portPath: string }),
    settle,
    held: () => fsWatches() - before + clock.pendingCount,
    cleanup: () => tree.cleanup(),
  };
}

const implementations: Implementation[] = [
  { name: 'devfs', make: () => treeHarness('devfs'), lacking: () => treeHarness('devfs', false) },
  { name: 'sysfs', make: () => treeHarness('sysfs'), lacking: () => treeHarness('sysfs', false) },
  {
    name: 'nusb (fake usb module)',
    async make() {
      const tree = await FakeUsbTree.create(); // the source checks <sysfsRoot>/bus/usb before listening
      const usb = new FakeUsb();
      const clock = new FakeClock();
      const source = new NusbSource({
        sysfsRoot: tree.sysfsRoot,
        load: async () => usb,
        clock,
        busPollMs: 100,
      });
      return {
        source,
        plug: async () => usb.fire('connect', nusbDevice),
        unplug: async () => usb.fire('disconnect', nusbDevice),
        settle: () => clock.advance(100),
        held: () => usb.total + clock.pendingCount,
        cleanup: () => tree.cleanup(),
      };
    },
    async lacking() {
      const clock = new FakeClock();
      const source = new NusbSource({
        load: async () => {
          throw new Error('no prebuilt binary for armv6');
        },
        clock,
      });
      return {
        source,
        plug: async () => {},
        unplug: async () => {},
        settle: () => clock.advance(100),
        held: () => clock.pendingCount,
        cleanup: async () => {},
      };
    },
  },
  {
    name: 'uevent (fake netlink socket)',
    async make() {
      const socket = new FakeNetlinkSocket();
      const dir = await mkdtemp(join(tmpdir(), 'replug-contract-uevent-'));
      const source = new UeventSource({
        openSocket: async () => socket,
        sysfsRoot: join(dir, 'sys'),
        devRoot: join(dir, 'dev'),
        procRoot: join(dir, 'proc'), // no uid_map: nothing says uevents are blocked
      });
      return {
        source,
        plug: async () => socket.deliver(usbDeviceUevent('add')),
        unplug: async () => socket.deliver(usbDeviceUevent('remove')),
        settle: async () => void (await sleep(20)),
        held: () => socket.listenerCount + (socket.closed ? 0 : 1),
        cleanup: () => rm(dir, { recursive: true, force: true }),
      };
    },
    async lacking() {
      const source = new UeventSource({
        openSocket: async () => {
          throw Object.assign(new Error('socket: EPERM'), { code: 'EPERM' });
        },
        procRoot: '/nonexistent-replug',
      });
      return {
        source,
        plug: async () => {},
        unplug: async () => {},
        settle: async () => void (await sleep(5)),
        held: () => 0,
        cleanup: async () => {},
      };
    },
  },
  {
    name: 'the test fake',
    async make() {
      const source = new FakeSource('sysfs');
      const device = { key: 'port:1-1', vid: '1209', pid: '0001', bus: 1, address: 3 };
      return {
        source,
        plug: async () => source.add(device),
        unplug: async () => source.remove(device),
        settle: async () => {},
        held: () => (source.running ? 1 : 0),
        cleanup: async () => {},
      };
    },
    async lacking() {
      const source = new FakeSource('sysfs', {
        initialStatus: { state: 'unavailable', reason: 'no bus', code: 'REPLUG_NO_USB_BUS' },
      });
      return {
        source,
        plug: async () => {},
        unplug: async () => {},
        settle: async () => {},
        held: () => 0,
        cleanup: async () => {},
      };
    },
  },
];

describe.each(implementations)('DeviceSource contract: $name', (impl) => {
  let h: Harness | undefined;
  const events: SourceEvent[] = [];
  const statuses: SourceStatus[] = [];
  const listener = {
    event: (e: SourceEvent) => events.push(e),
    status: (s: SourceStatus) => statuses.push(s),
  };
  afterEach(async () => {
    await h?.source.stop();
    await h?.cleanup();
    h = undefined;
    events.length = 0;
    statuses.length = 0;
  });

  it('starts without throwing where the host lacks what it needs, and says so', async () => {
    h = await impl.lacking();
    await expect(h.source.start(listener)).resolves.toBeUndefined();
    await h.settle();
    expect(statuses.at(-1)?.state).toBe('unavailable');
    expect(events).toEqual([]);
  });

  it('reports a device plugged then unplugged as added then removed, in order', async () => {
    h = await impl.make();
    await h.source.start(listener);
    await h.plug();
    await h.settle();
    await h.unplug();
    await h.settle();
    const mine = events.filter((e) => e.device.vid === '1209');
    expect(mine.map((e) => e.type)).toEqual(['added', 'removed']);
    expect(mine[0]?.device.bus).toBe(mine[1]?.device.bus);
    expect(mine[0]?.device.address).toBe(mine[1]?.device.address);
    expect((mine[1]?.at ?? 0) >= (mine[0]?.at ?? 0)).toBe(true);
    expect(mine.every((e) => e.source === h?.source.name)).toBe(true);
  });

  it('releases every watch, timer and listener on stop, and emits nothing once stopped', async () => {
    h = await impl.make();
    await h.source.start(listener);
    await h.settle();
    expect(h.held()).toBeGreaterThan(0);
    // Stop while the source is mid-work (a scan, a bus check or a read in flight).
    const settling = h.settle();
    await h.source.stop();
    await settling;
    expect(h.held()).toBe(0);
    const before = events.length;
    await h.plug();
    await h.settle();
    await h.unplug();
    await h.settle();
    expect(events.length).toBe(before);
  });
});

/** A fake clock whose latest timer the test can fire at once, with no promise flushed in between. */
class TimerInHand extends FakeClock {
  private latest: { fn: () => void; handle: ReturnType<FakeClock['setTimeout']> } | undefined;
  override setTimeout(fn: () => void, ms: number) {
    const handle = super.setTimeout(fn, ms);
    this.latest = { fn, handle };
    return handle;
  }
  fire(): void {
    const t = this.latest;
    if (!t) throw new Error('no timer');
    this.clearTimeout(t.handle);
    t.fn();
  }
}

describe('NusbSource: a stop during a bus check in flight (issue 13)', () => {
  it('leaves no listener on the usb module and no timer, even when that check would start listening', async () => {
    const tree = await FakeUsbTree.create({ bus: false });
    const usb = new FakeUsb();
    const clock = new TimerInHand();
    const source = new NusbSource({
      sysfsRoot: tree.sysfsRoot,
      load: async () => usb,
      clock,
      busPollMs: 100,
    });
    const events: SourceEvent[] = [];
    await source.start({ event: (e) => events.push(e), status: () => {} });
    expect(usb.total).toBe(0); // no bus: not listening
    await tree.createBus();
    // Fire the next bus check by hand: it is now reading sysfs. Stop before that read is done.
    clock.fire();
    await source.stop();
    await sleep(50);
    expect(usb.total).toBe(0);
    expect(clock.pendingCount).toBe(0);
    usb.fire('connect', nusbDevice);
    expect(events).toEqual([]);
    await tree.cleanup();
  });
});
