/**
 * USBDEVFS_RESET through usb@3 (`device.reset()`, node-usb-rs over nusb): the kernel resets the port
 * the device is on and re-runs its enumeration at the same address, calling the bound drivers' pre_reset
 * and post_reset (or unbinding and rebinding those that have none). It needs the usbfs node opened read-
 * write, so the same access as a session: root or a udev rule, and in a container the node bind-mounted
 * and allowed by the device cgroup. Only src/usb imports `usb` (DESIGN).
 */

import { ErrorCodes, ReplugError } from '../errors.js';
import { classifyUsbError, findNusbDevice, type NusbDeviceLike } from './access.js';
import type { UsbDevice } from './types.js';

export interface ResettableDevice extends NusbDeviceLike {
  reset(): Promise<void>;
}

export interface ResetModuleLike {
  usb: { getDevices(): Promise<ResettableDevice[]> };
}

const defaultLoad = async (): Promise<ResetModuleLike> => (await import('usb')) as unknown as ResetModuleLike;

export type UsbReset = (device: UsbDevice) => Promise<void>;

/** Resets `device` (found by bus and address in a fresh listing); rejects with a USB_* ReplugError. */
export function createUsbReset(load: () => Promise<ResetModuleLike> = defaultLoad): UsbReset {
  return async (device) => {
    const label = `${device.vid}:${device.pid} at bus ${device.bus} address ${device.address}`;
    let found: ResettableDevice | undefined;
    try {
      const mod = await load();
      found = findNusbDevice(await mod.usb.getDevices(), device) as ResettableDevice | undefined;
    } catch (err) {
      throw classifyUsbError(err, `listing devices to reset ${label}`);
    }
    if (!found) throw new ReplugError(ErrorCodes.USB_GONE, `${label} is no longer present`);
    try {
      await found.open();
    } catch (err) {
      throw classifyUsbError(err, `opening ${label} to reset it`);
    }
    try {
      await found.reset();
    } catch (err) {
      // After a reset that re-enumerates, the old handle reports the device gone: that is the reset working.
      const e = classifyUsbError(err, `resetting ${label}`);
      if (e.code !== ErrorCodes.USB_GONE) throw e;
    } finally {
      await found.close().catch(() => undefined);
    }
  };
}
