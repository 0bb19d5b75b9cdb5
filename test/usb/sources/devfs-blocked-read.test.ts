/**
 * On a real kernel reading a new usbfs node can wait: usbdev_open() takes the device lock, which the
 * kernel holds while it probes drivers, and sysfs string attributes take it too. A FIFO as the node
 * reproduces that on a fake tree: open(O_RDONLY) blocks (in a thread-pool thread) until a writer comes.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DevfsSource } from '../../../src/usb/sources/devfs.js';
import { findSysfsDevice, usbDevCharLink } from '../../../src/usb/sysfs-read.js';
import { encodeDescriptors, FakeUsbTree } from '../../fakes/usb-tree.js';
import { Recorder } from '../recorder.js';

describe('DevfsSource with a node whose read blocks', () => {
  let tree: FakeUsbTree | undefined;
  let source: DevfsSource | undefined;
  let release: (() => void) | undefined;
  afterEach(async () => {
    release?.();
    await source?.stop();
    await tree?.cleanup();
    source = undefined;
    tree = undefined;
    release = undefined;
  });

  it('reports other new devices while one read waits, and the waiting one when it completes', async () => {
    tree = await FakeUsbTree.create();
    source = new DevfsSource({ devfsRoot: tree.devfsRoot, sysfsRoot: tree.sysfsRoot });
    const rec = new Recorder();
    await source.start(rec);
    const blocked = tree.nodePath(1, 50);
    execFileSync('mkfifo', [blocked]);
    release = () => {
      release = undefined;
      const fd = openSync(blocked, 'w'); // the source's open is waiting: this does not block
      writeSync(fd, encodeDescriptors({ vid: 0xbeef, pid: 0x0050 }));
      closeSync(fd);
    };
    await new Promise((r) => setTimeout(r, 50)); // the FIFO's read is in flight now
    const other = await tree.plug({ vid: 0x1209, pid: 0x0002, serial: 'OTHER' });
    await rec.waitFor(() => rec.events.length === 1, 3000, 'the other device while the FIFO read waits');
    expect(rec.events[0]?.device).toMatchObject({ address: other.address, serial: 'OTHER' });
    release();
    await rec.waitFor(() => rec.events.length === 2, 3000, 'the blocked device once readable');
    expect(rec.events[1]?.device).toMatchObject({ vid: 'beef', pid: '0050', address: 50 });
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
