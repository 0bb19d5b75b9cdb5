/**
 * Step `rebind`: unbind the device from its driver and bind it again, through
 * /sys/bus/usb/drivers/<driver>/{unbind,bind}. For a USB device that driver is usbcore's generic `usb`
 * driver: unbinding it unconfigures the device and removes every interface with its driver (cp210x,
 * cdc_acm, usbfs claims); binding configures it and probes the interface drivers again. It works for
 * libusb-only devices too, where no interface driver is bound. Needs root and a writable /sys.
 */
import { basename, join } from 'node:path';
import { ErrorCodes, ReplugError } from '../../errors.js';
import type { Clock } from '../../util/clock.js';
import { sleep } from '../../util/clock.js';
import { type HealFs, nodeFs, portPathOf, verifyTarget, writeAttr } from './sysfs.js';
import type { HealStep } from './types.js';

export interface RebindOptions {
  sysfsRoot: string;
  clock: Clock;
  fs?: HealFs;
  /** Between unbind and bind (default 500 ms). */
  gapMs?: number;
}

export function rebindStep(o: RebindOptions): HealStep {
  const fs = o.fs ?? nodeFs;
  return {
    name: 'rebind',
    async run(target, signal) {
      const dir = await verifyTarget(fs, o.sysfsRoot, target);
      const name = portPathOf(target);
      const link = await fs.readlink(join(dir, 'driver')).catch(() => undefined);
      if (!link)
        throw new ReplugError(
          ErrorCodes.HEAL_UNSUPPORTED,
          `no driver is bound to ${name}: nothing to rebind`,
          {
            hint: 'authorize the device first (the reauthorize step)',
          },
        );
      const driverDir = join(o.sysfsRoot, 'bus', 'usb', 'drivers', basename(link));
      await writeAttr(fs, join(driverDir, 'unbind'), name, `unbinding ${name} from ${basename(link)}`);
      try {
        await sleep(o.clock, o.gapMs ?? 500, signal);
      } finally {
        await writeAttr(fs, join(driverDir, 'bind'), name, `binding ${name} to ${basename(link)} again`);
      }
    },
  };
}
