import { describe, expect, it } from 'vitest';
import { ErrorCodes, ReplugError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { createProbeDriver } from '../../../src/session/drivers/probe.js';
import type { ControlSetup, UsbAccess, UsbHandle } from '../../../src/usb/access.js';
import type { UsbDevice } from '../../../src/usb/types.js';

const target: UsbDevice = { key: 'port:1-1', vid: '1209', pid: '0001', bus: 1, address: 4, portPath: '1-1' };

/** An 18-byte device descriptor (USB 2.0 Table 9-8) with the given IDs. */
function descriptor(vid: number, pid: number): Uint8Array {
  const b = Buffer.alloc(18);
  b.writeUInt8(18, 0);
  b.writeUInt8(1, 1);
  b.writeUInt16LE(0x0200, 2);
  b.writeUInt8(64, 7);
  b.writeUInt16LE(vid, 8);
  b.writeUInt16LE(pid, 10);
  b.writeUInt8(1, 17);
  return new Uint8Array(b);
}

interface FakeOptions {
  active?: number | undefined;
  ids?: [number, number];
  descriptorBytes?: Uint8Array;
  claim?: () => Promise<void>;
  control?: (setup: ControlSetup) => Promise<Uint8Array> | undefined;
}

function fakeAccess(o: FakeOptions = {}) {
  const calls: string[] = [];
  const handle: UsbHandle = {
    activeConfiguration: () => ('active' in o ? o.active : 1),
    selectConfiguration: async (v) => void calls.push(`config ${v}`),
    claimInterface: async (n) => {
      calls.push(`claim ${n}`);
      await o.claim?.();
    },
    releaseInterface: async (n) => void calls.push(`release ${n}`),
    detachKernelDriver: async (n) => void calls.push(`detach ${n}`),
    controlTransferIn: async (setup, length) => {
      calls.push(`control ${setup.request}/${setup.value.toString(16)} ${length}`);
      const custom = o.control?.(setup);
      if (custom) return custom;
      if (setup.request === 6) return o.descriptorBytes ?? descriptor(...(o.ids ?? [0x1209, 0x0001]));
      return new Uint8Array([0, 0]);
    },
    close: async () => void calls.push('close'),
  };
  const access: UsbAccess = {
    open: async (d) => {
      calls.push(`open ${d.bus}-${d.address}`);
      return handle;
    },
  };
  return { access, calls };
}

const ctx = (signal = new AbortController().signal) => ({ signal, log: silentLogger() });

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: unknown) => (e instanceof ReplugError ? e.code : `not a ReplugError: ${String(e)}`),
  );
}

describe('probe driver', () => {
  it('claims interface 0, checks identity with GET_DESCRIPTOR, probes with GET_STATUS, releases on close', async () => {
    const { access, calls } = fakeAccess();
    const driver = createProbeDriver({ access });
    expect(driver.probeIntervalMs).toBe(2000);
    const h = await driver.open(target, ctx());
    await driver.probe(h, ctx());
    await driver.close(h, ctx());
    expect(calls).toEqual(['open 1-4', 'claim 0', 'control 6/100 18', 'control 0/0 2', 'release 0', 'close']);
  });

  it('selects configuration 1 only when another (or none) is active, detaches only when asked', async () => {
    const a = fakeAccess({ active: undefined });
    await createProbeDriver({ access: a.access }).open(target, ctx());
    expect(a.calls.slice(0, 3)).toEqual(['open 1-4', 'config 1', 'claim 0']);
    const b = fakeAccess();
    await createProbeDriver({ access: b.access, detachKernelDriver: true, interfaceNumber: 2 }).open(
      target,
      ctx(),
    );
    expect(b.calls.slice(0, 3)).toEqual(['open 1-4', 'detach 2', 'claim 2']);
  });

  it('fails with USB_IDENTITY_MISMATCH when the device answers with other IDs, and closes it', async () => {
    const { access, calls } = fakeAccess({ ids: [0x0403, 0x6001] });
    const err = await createProbeDriver({ access })
      .open(target, ctx())
      .catch((e: ReplugError) => e);
    expect(err).toMatchObject({ code: ErrorCodes.USB_IDENTITY_MISMATCH });
    expect((err as Error).message).toContain('answers as 0403:6001, expected 1209:0001');
    await Promise.resolve();
    expect(calls.at(-1)).toBe('close');
  });

  it('fails with USB_IO on a truncated descriptor', async () => {
    const { access } = fakeAccess({ descriptorBytes: new Uint8Array([18, 1, 0]) });
    expect(await codeOf(createProbeDriver({ access }).open(target, ctx()))).toBe(ErrorCodes.USB_IO);
  });

  it('passes a busy interface through with its code and closes the device', async () => {
    const { access, calls } = fakeAccess({
      claim: async () => {
        throw new ReplugError(ErrorCodes.USB_BUSY, 'busy');
      },
    });
    expect(await codeOf(createProbeDriver({ access }).open(target, ctx()))).toBe(ErrorCodes.USB_BUSY);
    await Promise.resolve();
    expect(calls.at(-1)).toBe('close');
  });

  it('fails the probe with the transfer error code (a wedged device)', async () => {
    let wedged = false;
    const { access } = fakeAccess({
      control: (s) =>
        s.request === 0 && wedged ? Promise.reject(new ReplugError(ErrorCodes.USB_TIMEOUT, 't')) : undefined,
    });
    const driver = createProbeDriver({ access });
    const h = await driver.open(target, ctx());
    wedged = true;
    expect(await codeOf(driver.probe(h, ctx()))).toBe(ErrorCodes.USB_TIMEOUT);
  });

  it('returns at once when aborted mid-transfer (unplug), instead of waiting for the URB timeout', async () => {
    const { access, calls } = fakeAccess({ control: () => new Promise<Uint8Array>(() => {}) });
    const controller = new AbortController();
    const opening = createProbeDriver({ access }).open(target, ctx(controller.signal));
    await new Promise((r) => setImmediate(r));
    controller.abort(new ReplugError(ErrorCodes.USB_GONE, 'gone'));
    expect(await codeOf(opening)).toBe(ErrorCodes.USB_GONE);
    await Promise.resolve();
    expect(calls.at(-1)).toBe('close');
  });

  it('closes without throwing when the device is already gone', async () => {
    const { access } = fakeAccess();
    const driver = createProbeDriver({ access });
    const h = await driver.open(target, ctx());
    h.usb.releaseInterface = async () => {
      throw new ReplugError(ErrorCodes.USB_GONE, 'gone');
    };
    h.usb.close = async () => {
      throw new ReplugError(ErrorCodes.USB_GONE, 'gone');
    };
    await expect(driver.close(h, ctx())).resolves.toBeUndefined();
  });
});
