/**
 * The default SessionDriver: open the device, select configuration 1, claim interface 0, check its
 * identity with GET_DESCRIPTOR(DEVICE), and while up repeat GET_STATUS as a cheap liveness probe so a
 * device that is wedged but still plugged in is noticed (issue 2). All USB calls go through the UsbAccess
 * port (src/usb/access.ts); every step also races the session's AbortSignal so an unplug mid-transfer
 * ends the open at once instead of waiting for a URB timeout.
 */
import { ErrorCodes, ReplugError } from '../../errors.js';
import type { ControlSetup, UsbAccess, UsbHandle } from '../../usb/access.js';
import { DEVICE_DESCRIPTOR_LENGTH, parseDeviceDescriptor } from '../../usb/descriptor.js';
import { stamp } from '../../usb/stamps.js';
import type { UsbDevice } from '../../usb/types.js';
import { DEFAULT_PROBE_INTERVAL_MS, type DriverContext, type SessionDriver } from './types.js';

export interface ProbeDriverOptions {
  access: UsbAccess;
  /** bConfigurationValue to select (default 1). */
  configuration?: number;
  /** Interface to claim (default 0). */
  interfaceNumber?: number;
  /** Detach a bound kernel driver (e.g. cdc_acm, usbhid) before claiming. Off unless the user asks. */
  detachKernelDriver?: boolean;
  /** Liveness probe period (default DEFAULT_PROBE_INTERVAL_MS; 0 disables). */
  probeIntervalMs?: number;
  /** Control transfer timeout (default 1000 ms). */
  transferTimeoutMs?: number;
}

export interface ProbeHandle {
  usb: UsbHandle;
  device: UsbDevice;
  interfaceNumber: number;
}

// USB 2.0 §9.4.3 GET_DESCRIPTOR (bRequest 6, wValue = type << 8 | index; DEVICE = 1).
const GET_DEVICE_DESCRIPTOR: ControlSetup = {
  requestType: 'standard',
  recipient: 'device',
  request: 6,
  value: 0x0100,
  index: 0,
};
// USB 2.0 §9.4.5 GET_STATUS to the device: 2 bytes, answered by every device in every state we reach.
const GET_STATUS: ControlSetup = {
  requestType: 'standard',
  recipient: 'device',
  request: 0,
  value: 0,
  index: 0,
};

/** Rejects with the signal's reason as soon as it aborts; the underlying call is left to fail later. */
function raced<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export function createProbeDriver(options: ProbeDriverOptions): SessionDriver<ProbeHandle> {
  const configuration = options.configuration ?? 1;
  const interfaceNumber = options.interfaceNumber ?? 0;
  const timeout = options.transferTimeoutMs ?? 1000;

  async function verify(usb: UsbHandle, device: UsbDevice, ctx: DriverContext): Promise<void> {
    // libusb's advice for set_configuration: selecting the active configuration again is a lightweight
    // reset and fails with EBUSY while kernel drivers hold interfaces, so only select when it differs.
    if (usb.activeConfiguration() !== configuration) {
      await raced(usb.selectConfiguration(configuration), ctx.signal);
    }
    if (options.detachKernelDriver) {
      try {
        await raced(usb.detachKernelDriver(interfaceNumber), ctx.signal);
      } catch (err) {
        // ENODATA when no driver is bound: fine, claiming tells us if something still holds it.
        ctx.log.debug({ err }, 'detaching the kernel driver did not succeed; claiming anyway');
      }
      stamp('detached', device);
    }
    await raced(usb.claimInterface(interfaceNumber), ctx.signal);
    stamp('claimed', device);
    const raw = await raced(
      usb.controlTransferIn(GET_DEVICE_DESCRIPTOR, DEVICE_DESCRIPTOR_LENGTH, timeout),
      ctx.signal,
    );
    const parsed = parseDeviceDescriptor(raw);
    if (!parsed.ok) {
      throw new ReplugError(
        ErrorCodes.USB_IO,
        `device descriptor of ${device.vid}:${device.pid} is unreadable: ${parsed.reason}`,
      );
    }
    const { vid, pid } = parsed.descriptor;
    if (vid !== device.vid || pid !== device.pid) {
      throw new ReplugError(
        ErrorCodes.USB_IDENTITY_MISMATCH,
        `device at bus ${device.bus} address ${device.address} answers as ${vid}:${pid}, expected ${device.vid}:${device.pid}`,
        { hint: 'the address was reused by another device, or the device re-enumerated with new IDs' },
      );
    }
  }

  return {
    name: 'probe',
    probeIntervalMs: options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS,

    async open(device, ctx) {
      const usb = await raced(options.access.open(device), ctx.signal);
      try {
        await verify(usb, device, ctx);
      } catch (err) {
        // Not awaited: on a vanished device close may block; the session already moved on.
        usb.close().catch((closeErr: unknown) => ctx.log.debug({ err: closeErr }, 'close after failed open'));
        throw err;
      }
      return { usb, device, interfaceNumber };
    },

    async probe(handle, ctx) {
      await raced(handle.usb.controlTransferIn(GET_STATUS, 2, timeout), ctx.signal);
    },

    async close(handle, ctx) {
      // Either step fails once the device is gone; that is expected, and close must never throw for it.
      try {
        await raced(handle.usb.releaseInterface(handle.interfaceNumber), ctx.signal);
      } catch (err) {
        ctx.log.debug({ err }, 'release interface failed');
      }
      try {
        await raced(handle.usb.close(), ctx.signal);
      } catch (err) {
        ctx.log.debug({ err }, 'close failed');
      }
    },
  };
}
