/**
 * Issue 12: 2,000 devices without /sys/dev/char links (the fakes have none, like some containers). Every
 * new devfs node used to scan all entries of its bus, every read ran at once: 20,000 open fds (EMFILE),
 * GBs of RSS, and only a fraction of the devices reported. Now reads are bounded (src/usb/bounded-io.ts)
 * and the devfs lookups share one index (SysfsIndex). The real sources and watcher, in this process.
 */
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { DevfsSource } from '../../src/usb/sources/devfs.js';
import { SysfsSource } from '../../src/usb/sources/sysfs.js';
import { UsbWatcher } from '../../src/usb/watcher.js';
import { FakeUsbTree, ramTmpDir } from '../fakes/usb-tree.js';

const BUSES = 16;
const PER_BUS = 125;
const openFds = () => readdirSync('/proc/self/fd').length;

describe('2,000 devices without /sys/dev/char links (issue 12)', () => {
  let tree: FakeUsbTree | undefined;
  let watcher: UsbWatcher | undefined;
  afterEach(async () => {
    await watcher?.stop();
    await tree?.cleanup();
    watcher = undefined;
    tree = undefined;
  });

  it('reports every device with a bounded number of open files', { timeout: 120_000 }, async () => {
    tree = await FakeUsbTree.create({ parentDir: ramTmpDir() });
    for (let bus = 1; bus <= BUSES; bus++) {
      for (let i = 0; i < PER_BUS; i++) {
        await tree.plug({
          vid: 0x1209,
          pid: 0x0001,
          bus,
          portPath: `${bus}-${i + 1}`,
          serial: `B${bus}D${i}`,
        });
      }
    }
    const baseline = openFds();
    const devfs = new DevfsSource({ devfsRoot: tree.devfsRoot, sysfsRoot: tree.sysfsRoot });
    const sysfs = new SysfsSource({
      sysfsRoot: tree.sysfsRoot,
      devfsRoot: tree.devfsRoot,
      intervalMs: 60_000,
    });
    watcher = new UsbWatcher({ sources: [devfs, sysfs], settleMs: 100 });
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, openFds() - baseline);
    }, 5);
    let changes = 0;
    const off = watcher.onDevicesChanged?.(() => changes++, { intervalMs: 100, exactUpTo: 64 });
    try {
      await watcher.start();
    } finally {
      clearInterval(sampler);
    }
    const devices = watcher.current();
    expect(devices).toHaveLength(BUSES * PER_BUS);
    // Every device has its serial from sysfs: the devfs lookups found their entries.
    expect(devices.filter((d) => d.serial?.startsWith('B')).length).toBe(BUSES * PER_BUS);
    // 16 reads at once plus inotify and the test's own: far from the 20,000 of before.
    expect(peak).toBeLessThan(200);
    await new Promise((r) => setTimeout(r, 250));
    // The list changed 2,000 times; its listener ran once per change up to 64 devices, then at most
    // every 100 ms.
    expect(changes).toBeGreaterThan(0);
    expect(changes).toBeLessThan(64 + 200);
    off?.();
  });
});
