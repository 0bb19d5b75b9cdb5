/**
 * Step `reset`: USBDEVFS_RESET on the target (src/usb/reset.ts). The port is reset and the device
 * re-enumerated at the same address; it is the gentlest step that reaches the device's own firmware.
 * Checked against sysfs first when the sysfs tree is readable, so a reset never lands on another device.
 */
import { ErrorCodes, ReplugError } from '../../errors.js';
import type { UsbReset } from '../../usb/reset.js';
import { type HealFs, nodeFs, verifyTarget } from './sysfs.js';
import type { HealStep } from './types.js';

export interface ResetOptions {
  sysfsRoot: string;
  reset: UsbReset;
  fs?: HealFs;
}

const ACCESS_HINT =
  'the reset step opens the usbfs node read-write: run as root or add a udev rule; in a container ' +
  "bind-mount /dev/bus/usb and allow it with --device-cgroup-rule='c 189:* rmw'";

export function resetStep(o: ResetOptions): HealStep {
  const fs = o.fs ?? nodeFs;
  return {
    name: 'reset',
    async run(target) {
      if (target.device.portPath) await verifyTarget(fs, o.sysfsRoot, target);
      try {
        await o.reset(target.device);
      } catch (err) {
        const code = err instanceof ReplugError ? err.code : ErrorCodes.USB_IO;
        const message = err instanceof Error ? err.message : String(err);
        if (code === ErrorCodes.USB_ACCESS)
          throw new ReplugError(ErrorCodes.HEAL_PERMISSION, message, { hint: ACCESS_HINT, cause: err });
        if (code === ErrorCodes.USB_GONE) throw new ReplugError(ErrorCodes.HEAL_NOT_PRESENT, message);
        throw new ReplugError(ErrorCodes.HEAL_FAILED, message, { cause: err });
      }
    },
  };
}
