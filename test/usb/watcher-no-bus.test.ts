/**
 * The host without a USB bus (this project's CI, VMs without usbcore): the watcher with the real devfs
 * and sysfs sources says so once, keeps running, and devices flow when the bus appears.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DevfsSource } from '../../src/usb/sources/devfs.js';
import { SysfsSource } from '../../src/usb/sources/sysfs.js';
import { type UsbBusState, UsbWatcher } from '../../src/usb/watcher.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';

/** The sources report their first status asynchronously: on a loaded machine that can take a while. */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

describe('UsbWatcher on a host without a USB bus (real sources, real inotify)', () => {
  let tree: FakeUsbTree | undefined;
  let watcher: UsbWatcher | undefined;
  afterEach(async () => {
    await watcher?.stop();
    await tree?.cleanup();
  });

  it('says "no USB bus" once, then flows devices when the bus appears', async () => {
    tree = await FakeUsbTree.create({ bus: false });
    watcher = new UsbWatcher({
      sources: [
        new DevfsSource({ devfsRoot: tree.devfsRoot, sysfsRoot: tree.sysfsRoot }),
        new SysfsSource({ sysfsRoot: tree.sysfsRoot, devfsRoot: tree.devfsRoot, intervalMs: 30 }),
      ],
      settleMs: 100,
    });
    const bus: UsbBusState[] = [];
    const added: string[] = [];
    watcher.on('usb.bus', (b) => bus.push(b));
    watcher.on('device.added', ({ device }) => added.push(`${device.vid}:${device.pid} ${device.key}`));
    await watcher.start();
    await until(() => bus.length > 0);
    await new Promise((r) => setTimeout(r, 200)); // several rescans (30 ms apart): still said only once
    expect(bus).toEqual([
      {
        present: false,
        reason: expect.stringMatching(/^no USB bus on this host \(.*bus\/usb is missing\)$/),
      },
    ]);
    await tree.createBus();
    await tree.plug({ vid: 0x1209, pid: 0x0001, serial: 'LATE' });
    const deadline = Date.now() + 5000;
    while (added.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(added).toEqual(['1209:0001 serial:LATE']);
    expect(bus.at(-1)).toEqual({ present: true });
    expect(bus).toHaveLength(2);
  });

  it('an empty /dev/bus/usb (made by a docker bind mount) is still no bus: sysfs has the last word', async () => {
    tree = await FakeUsbTree.create({ bus: false });
    await mkdir(join(tree.devfsRoot, 'bus', 'usb'), { recursive: true });
    watcher = new UsbWatcher({
      sources: [
        new DevfsSource({ devfsRoot: tree.devfsRoot, sysfsRoot: tree.sysfsRoot }),
        new SysfsSource({ sysfsRoot: tree.sysfsRoot, devfsRoot: tree.devfsRoot, intervalMs: 30 }),
      ],
      settleMs: 100,
    });
    const bus: UsbBusState[] = [];
    watcher.on('usb.bus', (b) => bus.push(b));
    await watcher.start();
    await until(() => bus.length > 0);
    await new Promise((r) => setTimeout(r, 200)); // several rescans: still said only once
    expect(bus).toEqual([
      {
        present: false,
        reason: expect.stringMatching(/^no USB bus on this host \(.*sys\/bus\/usb is missing\)$/),
      },
    ]);
    await tree.createBus();
    await tree.plug({ vid: 0x1209, pid: 0x0001, serial: 'LATE' });
    const deadline = Date.now() + 5000;
    while (bus.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(bus.at(-1)).toEqual({ present: true });
  });
});
