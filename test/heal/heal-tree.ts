/**
 * The sysfs controls the heal steps write, added to a FakeUsbTree (test/fakes/usb-tree.ts) as real files:
 * a device's `authorized`, its `driver` symlink to /sys/bus/usb/drivers/usb with `bind`/`unbind`, and the
 * hub port it hangs on with its `disable` attribute (the kernel's layout: <hub>:1.0/<hub>-port<N>). The
 * recording fs keeps every write in order, since each attribute file only holds the last one.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { hubPort } from '../../src/heal/steps/port-power.js';
import { type HealFs, nodeFs } from '../../src/heal/steps/sysfs.js';
import type { FakeUsbTree } from '../fakes/usb-tree.js';

/** Adds the heal controls for the device at `portPath` (already plugged). */
export function addHealControls(tree: FakeUsbTree, portPath: string): void {
  const devices = tree.sysfsDevicesDir;
  const dir = join(devices, portPath);
  writeFileSync(join(dir, 'authorized'), '1\n');
  const drivers = join(tree.sysfsRoot, 'bus', 'usb', 'drivers', 'usb');
  mkdirSync(drivers, { recursive: true });
  writeFileSync(join(drivers, 'bind'), '');
  writeFileSync(join(drivers, 'unbind'), '');
  symlinkSync(relative(dir, drivers), join(dir, 'driver'));
  const { hub, hubInterface, port } = hubPort(portPath);
  const portDir = join(devices, hubInterface, `${hub}-port${port}`);
  mkdirSync(portDir, { recursive: true });
  writeFileSync(join(portDir, 'disable'), '0\n');
}

export interface Write {
  /** Relative to the tree's sysfs root. */
  file: string;
  data: string;
}

/** nodeFs that records writes (relative to `sysfsRoot`) and can fail writes to chosen files with an errno. */
export function recordingFs(sysfsRoot: string, fail: Record<string, string> = {}) {
  const writes: Write[] = [];
  const fs: HealFs = {
    ...nodeFs,
    async writeFile(path, data) {
      const file = relative(sysfsRoot, path);
      const errno = Object.entries(fail).find(([suffix]) => file.endsWith(suffix))?.[1];
      if (errno) throw Object.assign(new Error(`${errno}: refused`), { code: errno });
      writes.push({ file, data });
      await nodeFs.writeFile(path, data);
    },
  };
  return { fs, writes };
}
