/**
 * Step `reauthorize`: write 0 then 1 to the device's sysfs `authorized` attribute. 0 makes usbcore
 * deconfigure the device (its interfaces and their drivers go, the usbfs node stays); 1 configures it again
 * and probes drivers afresh, the software equivalent of a replug without a new address. Needs write access
 * to /sys (root, and a /sys that is not mounted read-only).
 */
import { join } from 'node:path';
import type { Clock } from '../../util/clock.js';
import { sleep } from '../../util/clock.js';
import { type HealFs, nodeFs, verifyTarget, writeAttr } from './sysfs.js';
import type { HealStep } from './types.js';

export interface ReauthorizeOptions {
  sysfsRoot: string;
  clock: Clock;
  fs?: HealFs;
  /** Between 0 and 1, so drivers have seen the disconnect (default 500 ms). */
  gapMs?: number;
}

export function reauthorizeStep(o: ReauthorizeOptions): HealStep {
  const fs = o.fs ?? nodeFs;
  return {
    name: 'reauthorize',
    async run(target, signal) {
      const dir = await verifyTarget(fs, o.sysfsRoot, target);
      const file = join(dir, 'authorized');
      await writeAttr(fs, file, '0', 'deauthorizing the device');
      try {
        await sleep(o.clock, o.gapMs ?? 500, signal);
      } finally {
        // Always authorize again, even when stopping: a device left at 0 stays unusable until replugged.
        await writeAttr(fs, file, '1', 'authorizing the device again');
      }
    },
  };
}
