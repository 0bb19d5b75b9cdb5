import { describe, expect, it } from 'vitest';
import { ErrorCodes, ReplugError } from '../../src/errors.js';
import {
  type ControlSetup,
  classifyUsbError,
  createUsbAccess,
  findNusbDevice,
  type NusbDeviceLike,
} from '../../src/usb/access.js';
import type { UsbDevice } from '../../src/usb/types.js';

const target: UsbDevice = {
  key: 'port:1-1.4',
  vid: '1209',
  pid: '0001',
  bus: 1,
  address: 7,
  portPath: '1-1.4',
};

function fakeNusb(over: Partial<NusbDeviceLike> = {}): NusbDeviceLike & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    vendorId: 0x1209,
    productId: 0x0001,
    bus: '001',
    address: 7,
    ports: [1, 4],
    configuration: { configurationValue: 1 },
    open: async () => void calls.push('open'),
    close: async () => void calls.push('close'),
    selectConfiguration: async (v) => void calls.push(`config ${v}`),
    claimInterface: async (n) => void calls.push(`claim ${n}`),
    releaseInterface: async (n) => void calls.push(`release ${n}`),
    detachKernelDriver: async (n) => void calls.push(`detach ${n}`),
    controlTransferIn: async (setup: ControlSetup, length: number) => {
      calls.push(`control ${setup.request} ${length}`);
      return { data: new DataView(new Uint8Array([1, 2]).buffer), status: 'ok' };
    },
    ...over,
  };
}

const accessWith = (...devices: NusbDeviceLike[]) =>
  createUsbAccess({ load: async () => ({ usb: { getDevices: async () => devices } }) });

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(ReplugError);
    return (err as ReplugError).code;
  }
}

describe('usb access (usb@3 adapter)', () => {
  it('opens the device at our bus+address among several and passes calls through', async () => {
    const other = fakeNusb({ address: 3 });
    const ours = fakeNusb();
    const handle = await accessWith(other, ours).open(target);
    expect(handle.activeConfiguration()).toBe(1);
    await handle.claimInterface(0);
    const data = await handle.controlTransferIn(
      { requestType: 'standard', recipient: 'device', request: 0, value: 0, index: 0 },
      2,
    );
    expect([...data]).toEqual([1, 2]);
    await handle.close();
    expect(ours.calls).toEqual(['open', 'claim 0', 'control 0 2', 'close']);
    expect(other.calls).toEqual([]);
  });

  it('falls back to the port chain when bus is not a plain number', () => {
    const n = fakeNusb({ bus: 'usb1' });
    expect(findNusbDevice([n], target)).toBe(n);
    expect(findNusbDevice([fakeNusb({ bus: 'usb1', ports: [2] })], target)).toBeUndefined();
  });

  it('says the device is gone when it is absent or its address now holds another device', async () => {
    expect(await codeOf(accessWith().open(target))).toBe(ErrorCodes.USB_GONE);
    expect(await codeOf(accessWith(fakeNusb({ productId: 2 })).open(target))).toBe(ErrorCodes.USB_GONE);
  });

  it('maps usb@3 error texts to stable codes with hints', async () => {
    const denied = fakeNusb({
      open: async () => {
        throw new Error('open error: Permission denied (os error 13)');
      },
    });
    const err = await accessWith(denied)
      .open(target)
      .catch((e: ReplugError) => e);
    expect(err).toMatchObject({ code: ErrorCodes.USB_ACCESS });
    expect((err as ReplugError).hint).toContain('c 189:* rmw');
    expect((err as ReplugError).message).toContain('1209:0001 at bus 1 address 7');

    const busy = fakeNusb({
      claimInterface: async () => {
        throw new Error('claimInterface error: Device or resource busy (os error 16)');
      },
    });
    const h = await accessWith(busy).open(target);
    expect(await codeOf(h.claimInterface(0))).toBe(ErrorCodes.USB_BUSY);
  });

  it('reports a stalled or empty control transfer as an I/O error', async () => {
    const stall = fakeNusb({ controlTransferIn: async () => ({ status: 'stall' }) });
    const h = await accessWith(stall).open(target);
    const setup: ControlSetup = {
      requestType: 'standard',
      recipient: 'device',
      request: 6,
      value: 0x100,
      index: 0,
    };
    expect(await codeOf(h.controlTransferIn(setup, 18))).toBe(ErrorCodes.USB_IO);
  });

  it.each([
    ['controlTransferIn error: transfer was cancelled', ErrorCodes.USB_TIMEOUT],
    ['transferIn error: Disconnected', ErrorCodes.USB_GONE],
    ['open error: No such device (os error 19)', ErrorCodes.USB_GONE],
    ['open error: Operation not permitted (os error 1)', ErrorCodes.USB_ACCESS],
    ['controlTransferIn error: endpoint stalled', ErrorCodes.USB_IO],
  ])('classifies %j', (text, code) => {
    expect(classifyUsbError(new Error(text), 'x').code).toBe(code);
  });

  it('classifies Node errno codes too', () => {
    expect(classifyUsbError(Object.assign(new Error('x'), { code: 'EACCES' }), 'x').code).toBe(
      ErrorCodes.USB_ACCESS,
    );
  });

  it('says there is no USB bus when listing fails with errno 2 (usb@3 on a host without /sys/bus/usb)', async () => {
    const access = createUsbAccess({
      load: async () => ({
        usb: {
          getDevices: async () => {
            throw new Error('getDevices error: /sys/bus/usb/devices/ not found (errno 2)');
          },
        },
      }),
    });
    expect(await codeOf(access.open(target))).toBe(ErrorCodes.NO_USB_BUS);
  });

  it("loads the package once and, after that, lists in the caller's tick (no wait before getDevices)", async () => {
    let loads = 0;
    let lists = 0;
    const dev = fakeNusb();
    const access = createUsbAccess({
      load: async () => {
        loads++;
        return {
          usb: {
            getDevices: async () => {
              lists++;
              return [dev];
            },
          },
        };
      },
    });
    await (await access.open(target)).close();
    const second = access.open(target);
    // Synchronously after open() returned its promise: awaiting import() again let other callbacks run
    // between the session's open and the listing (32 ms p50 on the lab's slow guest).
    expect(lists).toBe(2);
    await (await second).close();
    expect(loads).toBe(1);
  });

  it('reports a usb package that cannot load as an unavailable source', async () => {
    const access = createUsbAccess({
      load: async () => {
        throw new Error('no prebuilt binary for linux-armv6');
      },
    });
    expect(await codeOf(access.open(target))).toBe(ErrorCodes.SOURCE_UNAVAILABLE);
  });

  it('with the real usb@3 package, rejects with a stable code instead of crashing', async () => {
    // On a host without a USB bus this is NO_USB_BUS; with one, bus 250 does not exist: USB_GONE.
    const code = await codeOf(createUsbAccess().open({ ...target, bus: 250, address: 1 }));
    expect([ErrorCodes.NO_USB_BUS, ErrorCodes.USB_GONE]).toContain(code);
  });
});
