/**
 * One contract, run against every SessionDriver (issue 13): the default probe driver (over the real access
 * layer, src/usb/access.ts, with a fake usb@3 world), examples/drivers/devnode.mjs (on a fake tree),
 * examples/drivers/bulk-loopback.mjs (with the `usb` package replaced by the same fake world, a loopback
 * gadget that echoes bulk OUT on bulk IN), and the test fake. Each must:
 *   - open a present device, probe it while it is there, and close it;
 *   - refuse to open an absent device with a REPLUG_* code (the session reads codes by shape);
 *   - fail a probe once the device is gone, with a REPLUG_* code;
 *   - close without hanging after the device is gone;
 *   - give up an open at once when the session aborts it.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { loadDriver } from '../../src/session/drivers/load.js';
import { createProbeDriver } from '../../src/session/drivers/probe.js';
import type { SessionDriver } from '../../src/session/drivers/types.js';
import { createUsbAccess, type NusbDeviceLike } from '../../src/usb/access.js';
import type { UsbDevice } from '../../src/usb/types.js';
import { FakeClock } from '../fakes/clock.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';
import { FakeDriver } from '../session/fake-driver.js';

/** A usb@3 (WebUSB-style) world with one loopback gadget that can be unplugged. */
class FakeGadget implements NusbDeviceLike {
  vendorId = 0x1209;
  productId = 0x0001;
  bus = '1';
  address = 5;
  ports = [1];
  configuration: { configurationValue: number } | null = null;
  present = true;
  private echo: Uint8Array | undefined;
  private check() {
    if (!this.present) throw new Error('No such device (os error 19)');
  }
  async open() {
    this.check();
  }
  async close() {}
  async selectConfiguration(value: number) {
    this.check();
    this.configuration = { configurationValue: value };
  }
  async claimInterface() {
    this.check();
  }
  async releaseInterface() {}
  async detachKernelDriver() {}
  async controlTransferIn(setup: { request: number }, length: number) {
    this.check();
    const b = Buffer.alloc(length);
    if (setup.request === 6) {
      b.writeUInt8(18, 0);
      b.writeUInt8(1, 1);
      b.writeUInt16LE(this.vendorId, 8);
      b.writeUInt16LE(this.productId, 10);
    }
    return { status: 'ok', data: new DataView(b.buffer, b.byteOffset, b.byteLength) };
  }
  async transferOut(_ep: number, data: Uint8Array) {
    this.check();
    this.echo = data;
    return { status: 'ok', bytesWritten: data.length };
  }
  async transferIn(_ep: number, length: number) {
    this.check();
    const data = this.echo ?? new Uint8Array(length);
    return { status: 'ok', data: new DataView(data.buffer, data.byteOffset, data.byteLength) };
  }
}

const world = { gadget: new FakeGadget() };
const fakeUsb = { getDevices: async () => (world.gadget.present ? [world.gadget] : []) };
vi.mock('usb', () => ({ usb: { getDevices: () => fakeUsb.getDevices() } }));

const gadgetDevice: UsbDevice = {
  key: 'port:1-1',
  vid: '1209',
  pid: '0001',
  bus: 1,
  address: 5,
  portPath: '1-1',
};

interface Harness {
  driver: SessionDriver;
  device: UsbDevice;
  /** A device of the same kind that is not there. */
  absent: UsbDevice;
  unplug(): Promise<void>;
  cleanup(): Promise<void>;
}

const implementations: { name: string; make(): Promise<Harness> }[] = [
  {
    name: 'the default probe driver (src/usb/access.ts over a fake usb@3)',
    async make() {
      world.gadget = new FakeGadget();
      const access = createUsbAccess({ load: async () => ({ usb: fakeUsb }) });
      return {
        driver: createProbeDriver({ access }) as SessionDriver,
        device: gadgetDevice,
        absent: { ...gadgetDevice, address: 99 },
        unplug: async () => {
          world.gadget.present = false;
        },
        cleanup: async () => {},
      };
    },
  },
  {
    name: 'examples/drivers/devnode.mjs (fake tree)',
    async make() {
      const tree = await FakeUsbTree.create();
      const device = await tree.plug({ vid: '1209', pid: '0001', serial: 'DN1' });
      return {
        driver: await loadDriver('examples/drivers/devnode.mjs', { cwd: process.cwd(), log: silentLogger() }),
        device,
        absent: { ...device, address: 99, devNode: tree.nodePath(1, 99) },
        unplug: () => tree.unplug(device),
        cleanup: () => tree.cleanup(),
      };
    },
  },
  {
    name: 'examples/drivers/bulk-loopback.mjs (fake usb package)',
    async make() {
      world.gadget = new FakeGadget();
      return {
        // Loaded as --driver loads it; its `import('usb')` gets the fake world above.
        driver: await loadDriver('examples/drivers/bulk-loopback.mjs', {
          cwd: process.cwd(),
          log: silentLogger(),
          options: { timeoutMs: '200' },
        }),
        device: gadgetDevice,
        absent: { ...gadgetDevice, address: 99 },
        unplug: async () => {
          world.gadget.present = false;
        },
        cleanup: async () => {},
      };
    },
  },
  {
    name: 'the test fake',
    async make() {
      const driver = new FakeDriver(new FakeClock());
      const gone = { kind: 'fail', code: 'REPLUG_USB_GONE' } as const;
      return {
        driver: driver as unknown as SessionDriver,
        device: gadgetDevice,
        absent: { ...gadgetDevice, address: 99 },
        // The fake follows a script: what the next calls do once the device is gone.
        unplug: async () => {
          driver.probe_.push(gone);
          driver.open_.push(gone);
        },
        cleanup: async () => {},
        ...{ absentOpen: () => driver.open_.unshift(gone) },
      } as Harness & { absentOpen(): void };
    },
  },
];

const ctx = (signal = new AbortController().signal) => ({ signal, log: silentLogger() });
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (e: unknown) => String((e as { code?: unknown })?.code ?? e),
  );
/** Rejects if `p` takes longer than `ms` (real time: a driver that hangs fails this). */
const within = <T>(ms: number, p: Promise<T>) =>
  Promise.race([
    p,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms)),
  ]);

describe.each(implementations)('SessionDriver contract: $name', (impl) => {
  let h: (Harness & { absentOpen?: () => void }) | undefined;
  afterEach(async () => {
    await h?.cleanup();
    h = undefined;
  });

  it('has a name and a probe interval that is a number >= 0 when given', async () => {
    h = await impl.make();
    expect(typeof h.driver.name).toBe('string');
    expect(h.driver.name.length).toBeGreaterThan(0);
    const i = h.driver.probeIntervalMs;
    expect(i === undefined || (Number.isFinite(i) && i >= 0)).toBe(true);
  });

  it('opens a present device, probes it, closes it', async () => {
    h = await impl.make();
    const handle = await within(2000, h.driver.open(h.device, ctx()));
    await within(2000, h.driver.probe(handle, ctx()));
    await within(2000, h.driver.close(handle, ctx()));
  });

  it('refuses an absent device with a REPLUG_* code', async () => {
    h = await impl.make();
    h.absentOpen?.();
    expect(await within(2000, codeOf(h.driver.open(h.absent, ctx())))).toMatch(/^REPLUG_USB_/);
  });

  it('fails a probe once the device is gone (REPLUG_* code), and closes without hanging', async () => {
    h = await impl.make();
    const handle = await h.driver.open(h.device, ctx());
    await h.unplug();
    expect(await within(2000, codeOf(h.driver.probe(handle, ctx())))).toMatch(/^REPLUG_USB_/);
    await within(2000, h.driver.close(handle, ctx()));
  });

  it('gives up an open the session aborted', async () => {
    h = await impl.make();
    const abort = new AbortController();
    abort.abort(Object.assign(new Error('session ended'), { code: 'REPLUG_USB_GONE' }));
    const outcome = await within(2000, codeOf(h.driver.open(h.device, ctx(abort.signal))));
    // A driver may finish an open that was already done when it looked at the signal; it must not hang.
    expect(['REPLUG_USB_GONE', 'resolved']).toContain(outcome);
  });
});

describe('examples/drivers/bulk-loopback.mjs, a failed open', () => {
  it('has released the device when the open rejects (the next open found it busy in the lab)', async () => {
    /** The claim fails; close takes a turn of the event loop, as usb@3's does. */
    class BusyGadget extends FakeGadget {
      closed = false;
      override async claimInterface(): Promise<void> {
        throw Object.assign(new Error('LIBUSB_ERROR_BUSY'), { code: 'EBUSY' });
      }
      override async close(): Promise<void> {
        await new Promise((r) => setTimeout(r, 5));
        this.closed = true;
      }
    }
    const gadget = new BusyGadget();
    world.gadget = gadget;
    const driver = await loadDriver('examples/drivers/bulk-loopback.mjs', {
      cwd: process.cwd(),
      log: silentLogger(),
      options: { timeoutMs: '200' },
    });
    expect(await codeOf(driver.open(gadgetDevice, ctx()))).toMatch(/^REPLUG_USB_/);
    expect(gadget.closed).toBe(true);
  });
});
