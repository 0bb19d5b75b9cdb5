/**
 * The one place the default session driver's USB calls live (DESIGN: only src/usb imports `usb`).
 * `UsbAccess` is a small port so drivers are unit-tested with a fake; `createUsbAccess` implements it with
 * usb@3 (node-usb-rs, a WebUSB-style API over the nusb crate), imported lazily so hosts where the native
 * addon cannot load still run everything else.
 *
 * What usb@3 device objects expose (node-usb-rs src/webusb_device.rs): vendorId, productId, `bus` (a
 * string: nusb's bus_id, the decimal bus number on Linux), `address` (devnum), `ports` (the port chain,
 * e.g. [1, 4] for sysfs `1-1.4`) and `speed`. Its errors are plain Errors whose message embeds the OS
 * error ("open error: Permission denied (os error 13)", "getDevices error: ... (errno 2)") with
 * code 'GenericFailure', so classification reads the message.
 */
import { ErrorCodes, errnoOf, ReplugError } from '../errors.js';
import { stamp } from './stamps.js';
import type { UsbDevice } from './types.js';

export interface ControlSetup {
  requestType: 'standard' | 'class' | 'vendor';
  recipient: 'device' | 'interface' | 'endpoint' | 'other';
  request: number;
  value: number;
  index: number;
}

/** An opened device. Every method rejects with a ReplugError carrying a USB_* code. */
export interface UsbHandle {
  /** bConfigurationValue of the active configuration, undefined when unconfigured or unknown. */
  activeConfiguration(): number | undefined;
  selectConfiguration(value: number): Promise<void>;
  claimInterface(interfaceNumber: number): Promise<void>;
  releaseInterface(interfaceNumber: number): Promise<void>;
  /** Linux only; call it only when the user asked (it takes the device from e.g. cdc_acm or usbhid). */
  detachKernelDriver(interfaceNumber: number): Promise<void>;
  /** usb@3 routes control transfers through a claimed interface: claim one first. */
  controlTransferIn(setup: ControlSetup, length: number, timeoutMs?: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface UsbAccess {
  open(device: UsbDevice): Promise<UsbHandle>;
}

/** The slice of a usb@3 device this module uses (structural, so tests can pass a fake module). */
export interface NusbDeviceLike {
  vendorId: number;
  productId: number;
  bus: string;
  address: number;
  ports: number[];
  readonly configuration?: { configurationValue: number } | null;
  open(): Promise<void>;
  close(): Promise<void>;
  selectConfiguration(value: number): Promise<void>;
  claimInterface(n: number): Promise<void>;
  releaseInterface(n: number): Promise<void>;
  detachKernelDriver(n: number): Promise<void>;
  controlTransferIn(
    setup: ControlSetup,
    length: number,
    timeout?: number,
  ): Promise<{ data?: DataView | undefined; status: string }>;
}

export interface NusbModuleLike {
  usb: { getDevices(): Promise<NusbDeviceLike[]> };
}

export interface UsbAccessOptions {
  /** Loads the usb@3 module; injected in tests. */
  load?: () => Promise<NusbModuleLike>;
  /** Default control transfer timeout in ms (usb@3's own default is 1000). */
  timeoutMs?: number;
}

const ACCESS_HINT =
  'run as root or add a udev rule for this device; in a container bind-mount /dev/bus/usb and allow ' +
  "the nodes with --device-cgroup-rule='c 189:* rmw'";
const BUSY_HINT =
  'another process or a kernel driver holds the interface: stop it, or ask replug to detach the kernel driver';

/** Maps an error from usb@3 (or Node) to a ReplugError with a stable code and one line for the user. */
export function classifyUsbError(err: unknown, what: string): ReplugError {
  if (err instanceof ReplugError) return err;
  const text = err instanceof Error ? err.message : String(err);
  const errno = /(?:os error|errno) (\d+)/i.exec(text)?.[1];
  const name = errnoOf(err);
  const message = `${what} failed: ${text}`;
  const opts = { cause: err };
  const is = (nums: string[], names: string[], words: RegExp) =>
    (errno !== undefined && nums.includes(errno)) ||
    (name !== undefined && names.includes(name)) ||
    words.test(text);
  // errno values are Linux's (asm-generic/errno-base.h, errno.h).
  if (is(['1', '13'], ['EACCES', 'EPERM'], /permission denied|access denied/i))
    return new ReplugError(ErrorCodes.USB_ACCESS, message, { ...opts, hint: ACCESS_HINT });
  if (is(['16'], ['EBUSY'], /\bbusy\b/i))
    return new ReplugError(ErrorCodes.USB_BUSY, message, { ...opts, hint: BUSY_HINT });
  if (is(['19', '2', '108'], ['ENODEV', 'ENOENT', 'ESHUTDOWN'], /no such device|disconnected|not found/i))
    return new ReplugError(ErrorCodes.USB_GONE, message, {
      ...opts,
      hint: 'the device was unplugged or re-enumerated',
    });
  // nusb cancels a transfer when its timeout expires, so "cancelled" means timed out here.
  if (is(['110'], ['ETIMEDOUT'], /timed? ?out|cancel/i))
    return new ReplugError(ErrorCodes.USB_TIMEOUT, message, {
      ...opts,
      hint: 'the device did not answer in time',
    });
  return new ReplugError(ErrorCodes.USB_IO, message, opts);
}

const sameIds = (n: NusbDeviceLike, d: UsbDevice) =>
  n.vendorId === Number.parseInt(d.vid, 16) && n.productId === Number.parseInt(d.pid, 16);

/** Finds the usb@3 device for our bus+address, falling back to the port chain when `bus` is not numeric. */
export function findNusbDevice(
  list: readonly NusbDeviceLike[],
  device: UsbDevice,
): NusbDeviceLike | undefined {
  const byBus = list.find((n) => Number(n.bus) === device.bus && n.address === device.address);
  if (byBus) return byBus;
  return list.find(
    (n) =>
      device.portPath !== undefined &&
      `${device.bus}-${n.ports.join('.')}` === device.portPath &&
      n.address === device.address,
  );
}

const defaultLoad = async (): Promise<NusbModuleLike> => (await import('usb')) as unknown as NusbModuleLike;

export function createUsbAccess(options: UsbAccessOptions = {}): UsbAccess {
  const load = options.load ?? defaultLoad;
  const timeoutMs = options.timeoutMs ?? 1000;
  // Kept once loaded, so an open issues its getDevices() in the caller's tick: awaiting import() again let
  // other callbacks run first (32 ms p50 between the session's open and the listing in the lab's `equal`).
  let loaded: NusbModuleLike | undefined;
  return {
    async open(device) {
      const label = `${device.vid}:${device.pid} at bus ${device.bus} address ${device.address}`;
      let mod: NusbModuleLike;
      try {
        mod = loaded ?? (await load());
        loaded = mod;
      } catch (err) {
        throw new ReplugError(
          ErrorCodes.SOURCE_UNAVAILABLE,
          `the usb package could not load: ${String(err)}`,
          {
            cause: err,
            hint: 'usb@3 ships prebuilt binaries for linux x64, arm64 and armv7 only',
          },
        );
      }
      let list: NusbDeviceLike[];
      stamp('listing', device);
      try {
        list = await mod.usb.getDevices();
      } catch (err) {
        if (/(?:os error|errno) 2\b|not found/i.test(String((err as Error)?.message ?? err)))
          throw new ReplugError(ErrorCodes.NO_USB_BUS, 'this host has no USB bus (/sys/bus/usb is missing)', {
            cause: err,
            hint: 'in a VM or container, pass a USB controller or bind-mount /sys and /dev/bus/usb',
          });
        throw classifyUsbError(err, `listing devices to open ${label}`);
      }
      stamp('enumerated', device);
      const found = findNusbDevice(list, device);
      // The kernel may have reused the address for another device after a replug: that is not ours.
      if (!found || !sameIds(found, device))
        throw new ReplugError(ErrorCodes.USB_GONE, `${label} is no longer present`, {
          hint: 'the device was unplugged or re-enumerated',
        });
      try {
        await found.open();
      } catch (err) {
        throw classifyUsbError(err, `opening ${label}`);
      }
      stamp('usbfs', device);
      return wrap(found, label, timeoutMs);
    },
  };
}

function wrap(dev: NusbDeviceLike, label: string, defaultTimeout: number): UsbHandle {
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw classifyUsbError(err, `${what} on ${label}`);
    }
  };
  return {
    activeConfiguration() {
      try {
        return dev.configuration?.configurationValue ?? undefined;
      } catch {
        return undefined; // unconfigured devices throw from the getter
      }
    },
    selectConfiguration: (v) => call(`selecting configuration ${v}`, () => dev.selectConfiguration(v)),
    claimInterface: (n) => call(`claiming interface ${n}`, () => dev.claimInterface(n)),
    releaseInterface: (n) => call(`releasing interface ${n}`, () => dev.releaseInterface(n)),
    detachKernelDriver: (n) =>
      call(`detaching the kernel driver of interface ${n}`, () => dev.detachKernelDriver(n)),
    controlTransferIn: (setup, length, timeoutMs = defaultTimeout) =>
      call(`control transfer (request ${setup.request})`, async () => {
        const r = await dev.controlTransferIn(setup, length, timeoutMs);
        if (r.status !== 'ok' || !r.data)
          throw new ReplugError(ErrorCodes.USB_IO, `control transfer ${r.status} on ${label}`);
        return new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength);
      }),
    close: () => call('closing', () => dev.close()),
  };
}
