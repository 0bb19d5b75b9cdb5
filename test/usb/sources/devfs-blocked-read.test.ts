/**
 * On a real kernel reading a new usbfs node can wait: usbdev_open() takes the device lock, which the
 * kernel holds while it probes drivers, and sysfs string attributes take it too. A fake tree cannot make
 * open() wait that way (a FIFO is rejected as not a node, see test/hostile/fifo.test.ts), so these tests
 * stand in the kernel: the bounded reader's open() for one node waits until the test releases it.
 */
import { mkdirSync, readSync, symlinkSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type FsOps, realSyncOps, UsbFs } from '../../../src/usb/bounded-io.js';
import { DevfsSource } from '../../../src/usb/sources/devfs.js';
import { findSysfsDevice, usbDevCharLink } from '../../../src/usb/sysfs-read.js';
import { FakeUsbTree } from '../../fakes/usb-tree.js';
import { Recorder } from '../recorder.js';

/** Real fs calls, except that open() of `held` waits until release() (a kernel holding the device lock). */
function heldOpen(held: string) {
  let release = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let waiting = 0;
  const ops: FsOps = {
    stat,
    open: async (path, flags) => {
      if (path === held) {
        waiting++;
        await gate;
      }
      return open(path, flags);
    },
  };
  return { ops, release: () => release(), waiting: () => waiting };
}

/**
 * Real fs calls, except that the read of the lock-taking attribute `held` waits until release(): on a
 * kernel, open() of a sysfs string returns at once and its first read() calls show(), which takes the lock.
 */
function heldRead(held: string) {
  let release = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let waiting = 0;
  const ops: FsOps = {
    stat,
    open: (path, flags) => open(path, flags),
    readLocked: async (path, fd, buf) => {
      if (path === held) {
        waiting++;
        await gate;
      }
      return readSync(fd, buf, 0, buf.length, null);
    },
  };
  return { ops, release: () => release(), waiting: () => waiting };
}

describe('DevfsSource with a node whose open waits on the device lock', () => {
  let tree: FakeUsbTree | undefined;
  let source: DevfsSource | undefined;
  afterEach(async () => {
    await source?.stop();
    await tree?.cleanup();
    source = undefined;
    tree = undefined;
  });

  it('reports other new devices while one read waits, and the waiting one when it completes', async () => {
    tree = await FakeUsbTree.create();
    const held = heldOpen(tree.nodePath(1, 50));
    const fs = new UsbFs({ ops: held.ops, timeoutMs: 10_000 });
    source = new DevfsSource({ devfsRoot: tree.devfsRoot, sysfsRoot: tree.sysfsRoot, fs });
    const rec = new Recorder();
    await source.start(rec);
    await tree.plug({ vid: 0xbeef, pid: 0x0050, address: 50, portPath: '1-5' });
    await rec.waitFor(() => held.waiting() > 0, 3000, 'the read of 001/050 to wait');
    const other = await tree.plug({ vid: 0x1209, pid: 0x0002, serial: 'OTHER' });
    await rec.waitFor(() => rec.events.length === 1, 3000, 'the other device while the read waits');
    expect(rec.events[0]?.device).toMatchObject({ address: other.address, serial: 'OTHER' });
    held.release();
    await rec.waitFor(() => rec.events.length === 2, 3000, 'the held device once readable');
    expect(rec.events[1]?.device).toMatchObject({ vid: 'beef', pid: '0050', address: 50 });
  });

  it('a read past its bound is busy, not unreadable: it is read again when the kernel lets go', async () => {
    tree = await FakeUsbTree.create();
    const held = heldOpen(tree.nodePath(1, 50));
    const fs = new UsbFs({ ops: held.ops, timeoutMs: 100 });
    source = new DevfsSource({ devfsRoot: tree.devfsRoot, sysfsRoot: tree.sysfsRoot, fs });
    const rec = new Recorder();
    await source.start(rec);
    await tree.plug({ vid: 0xbeef, pid: 0x0050, address: 50, portPath: '1-5' });
    await rec.waitFor(() => source?.unreadable.get('001/050')?.startsWith('busy') === true, 3000, 'busy');
    expect(fs.stats()).toMatchObject({ stuck: 1, timeouts: 1 });
    expect(rec.events).toHaveLength(0);
    held.release();
    await rec.waitFor(() => rec.events.length === 1, 3000, 'the device after the kernel returned');
    expect(rec.events[0]?.device).toMatchObject({ vid: 'beef', address: 50 });
    expect(fs.stats().stuck).toBe(0);
  });

  it('a plug is reported at once from the lock-free attributes while the serial waits; the serial follows', async () => {
    tree = await FakeUsbTree.create();
    // The kernel's devt link exists before the node (device_add); the fake has none, so make it. The
    // serial (its show() takes the device lock) is held, as while the kernel probes drivers.
    mkdirSync(join(tree.sysfsRoot, 'dev', 'char'), { recursive: true });
    symlinkSync(join('..', '..', 'bus', 'usb', 'devices', '1-5'), usbDevCharLink(tree.sysfsRoot, 1, 50));
    const held = heldRead(join(tree.sysfsDevicesDir, '1-5', 'serial'));
    const fs = new UsbFs({ ops: held.ops, syncOps: realSyncOps, timeoutMs: 10_000 });
    source = new DevfsSource({ devfsRoot: tree.devfsRoot, sysfsRoot: tree.sysfsRoot, fs });
    const rec = new Recorder();
    await source.start(rec);
    await tree.plug({ vid: 0x0403, pid: 0x6001, serial: 'LAB-SERIAL', address: 50, portPath: '1-5' });
    await rec.waitFor(() => rec.events.length === 1, 3000, 'the quick report');
    expect(held.waiting()).toBe(1); // the serial is still held: this report did not wait for it
    expect(rec.events[0]).toMatchObject({
      type: 'added',
      device: { vid: '0403', pid: '6001', bus: 1, address: 50, portPath: '1-5', key: 'port:1-5' },
    });
    expect(rec.events[0]?.device.serial).toBeUndefined();
    held.release();
    await rec.waitFor(() => rec.events.length === 2, 5000, 'the report with the serial');
    expect(rec.events[1]).toMatchObject({
      type: 'added',
      device: { address: 50, serial: 'LAB-SERIAL', key: 'serial:LAB-SERIAL' },
    });
    await tree.unplug('1-5');
    await rec.waitFor(() => rec.events.length === 3, 3000, 'the removal');
    expect(rec.events[2]).toMatchObject({ type: 'removed', device: { address: 50 } });
  });

  it('without a lock-free identity (no devt link, no sync reads) the serial is waited for before the report', async () => {
    tree = await FakeUsbTree.create();
    // The node reads at once; the serial attribute is held past the reader's bound. Reported without it
    // and never again, a target named by its serial never matched (the lab's two-target run).
    const held = heldOpen(join(tree.sysfsDevicesDir, '1-5', 'serial'));
    const fs = new UsbFs({ ops: held.ops, timeoutMs: 100 });
    source = new DevfsSource({ devfsRoot: tree.devfsRoot, sysfsRoot: tree.sysfsRoot, fs });
    const rec = new Recorder();
    await source.start(rec);
    await tree.plug({ vid: 0x0403, pid: 0x6001, serial: 'LAB-SERIAL', address: 50, portPath: '1-5' });
    await rec.waitFor(() => fs.stats().timeouts > 0, 3000, 'the serial read to pass its bound');
    await new Promise((r) => setTimeout(r, 300));
    expect(rec.events).toHaveLength(0); // still waiting for the lock, not reporting half a device
    held.release();
    await rec.waitFor(() => rec.events.length === 1, 5000, 'the device once the lock is free');
    expect(rec.events[0]?.device).toMatchObject({ vid: '0403', pid: '6001', serial: 'LAB-SERIAL' });
  });

  it('stop() returns within its bound while a read is held, and reports nothing after', async () => {
    tree = await FakeUsbTree.create();
    const held = heldOpen(tree.nodePath(1, 50));
    const fs = new UsbFs({ ops: held.ops, timeoutMs: 60_000 });
    source = new DevfsSource({
      devfsRoot: tree.devfsRoot,
      sysfsRoot: tree.sysfsRoot,
      fs,
      stopTimeoutMs: 200,
    });
    const rec = new Recorder();
    await source.start(rec);
    await tree.plug({ vid: 0xbeef, pid: 0x0050, address: 50, portPath: '1-5' });
    await rec.waitFor(() => held.waiting() > 0, 3000, 'the read to wait');
    const started = Date.now();
    await source.stop();
    // The bound is 200 ms; anything under several seconds proves stop() did not wait for the kernel.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(source.watchCount).toBe(0);
    held.release();
    await new Promise((r) => setTimeout(r, 100));
    expect(rec.events).toHaveLength(0);
    source = undefined;
  });
});

describe('findSysfsDevice', () => {
  it('goes through /sys/dev/char/189:<minor> when the link is there', async () => {
    const tree = await FakeUsbTree.create();
    try {
      await tree.plug({ vid: 0x1209, pid: 1, serial: 'A' });
      const b = await tree.plug({ vid: 0x1209, pid: 2, serial: 'B', portPath: '1-7' });
      // The fake has no /sys/dev; make the link the kernel makes (a relative one, like sysfs), minor
      // (bus-1)*128 + devnum-1, and hide the entry from the scan by giving it a wrong devnum there.
      const link = usbDevCharLink(tree.sysfsRoot, 1, b.address);
      expect(link.endsWith(`189:${b.address - 1}`)).toBe(true);
      mkdirSync(join(tree.sysfsRoot, 'dev', 'char'), { recursive: true });
      symlinkSync(join('..', '..', 'bus', 'usb', 'devices', '1-7'), link);
      const found = await findSysfsDevice(tree.sysfsRoot, 1, b.address, tree.devfsRoot);
      expect(found).toMatchObject({ serial: 'B', portPath: '1-7', address: b.address });
      // A link to an entry with another bus/devnum (stale) falls back to the scan.
      expect(await findSysfsDevice(tree.sysfsRoot, 1, 2)).toMatchObject({ serial: 'A' });
      expect(await findSysfsDevice(tree.sysfsRoot, 1, 99)).toBeUndefined();
    } finally {
      await tree.cleanup();
    }
  });
});
