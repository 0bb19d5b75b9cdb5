import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../src/errors.js';
import { DevfsSource } from '../../../src/usb/sources/devfs.js';
import { FakeUsbTree } from '../../fakes/usb-tree.js';
import { Recorder } from '../recorder.js';

describe('DevfsSource (real inotify on a fake tree)', () => {
  let tree: FakeUsbTree | undefined;
  let source: DevfsSource | undefined;
  afterEach(async () => {
    await source?.stop();
    await tree?.cleanup();
    source = undefined;
    tree = undefined;
  });

  it('reports devices present at start and plugged later, enriched from sysfs', async () => {
    tree = await FakeUsbTree.create();
    const first = await tree.plug({ vid: 0x1209, pid: 0x0001, serial: 'S1', product: 'Probe' });
    source = new DevfsSource({ devfsRoot: tree.devfsRoot, sysfsRoot: tree.sysfsRoot });
    const rec = new Recorder();
    await source.start(rec);
    expect(rec.statuses.map((s) => s.state)).toEqual(['starting', 'active']);
    expect(rec.events).toHaveLength(1);
    expect(rec.events[0]).toMatchObject({
      type: 'added',
      source: 'devfs',
      device: { vid: '1209', pid: '0001', serial: 'S1', product: 'Probe', portPath: '1-1', key: 'serial:S1' },
    });
    const second = await tree.plug({ vid: 0x0403, pid: 0x6001, bus: 2 });
    await rec.waitFor(() => rec.events.length === 2, 5000, 'second device');
    expect(rec.events[1]).toMatchObject({
      type: 'added',
      device: { vid: '0403', bus: 2, address: second.address },
    });
    await tree.unplug(first);
    await rec.waitFor(() => rec.events.length === 3, 5000, 'removal');
    expect(rec.events[2]).toMatchObject({
      type: 'removed',
      device: { bus: 1, address: first.address, serial: 'S1' },
    });
    expect((await source.list()).map((d) => d.vid)).toEqual(['0403']);
  });

  it('works from devfs alone (no sysfs): identity from the descriptor', async () => {
    tree = await FakeUsbTree.create();
    source = new DevfsSource({ devfsRoot: tree.devfsRoot });
    const rec = new Recorder();
    await source.start(rec);
    await tree.plug({ vid: 0x1209, pid: 0x8566, serial: 'X' });
    await rec.waitFor(() => rec.events.length === 1);
    const ev = rec.events[0];
    expect(ev?.device).toMatchObject({ vid: '1209', pid: '8566', bus: 1, address: 2, key: 'addr:1-2' });
    expect(ev?.device.serial).toBeUndefined();
  });

  it('skips a node with a garbage descriptor after retrying, and records why', async () => {
    tree = await FakeUsbTree.create();
    source = new DevfsSource({ devfsRoot: tree.devfsRoot, readRetryDelaysMs: [1, 1] });
    const rec = new Recorder();
    await source.start(rec);
    await tree.plug({ vid: 1, pid: 2, nodeContent: Buffer.from('garbage') });
    await rec.waitFor(() => source?.unreadable.size === 1, 5000, 'unreadable entry');
    expect([...source.unreadable.values()][0]).toContain('7 bytes');
    expect(rec.events).toEqual([]);
  });

  it('says once that there is no bus, keeps watching, and sees devices when the bus appears', async () => {
    tree = await FakeUsbTree.create({ bus: false });
    source = new DevfsSource({ devfsRoot: tree.devfsRoot, sysfsRoot: tree.sysfsRoot });
    const rec = new Recorder();
    await source.start(rec);
    expect(rec.statuses.at(-1)).toMatchObject({ state: 'unavailable', code: ErrorCodes.NO_USB_BUS });
    expect(source.watchCount).toBe(1);
    await tree.createBus();
    await rec.waitFor(() => rec.statuses.at(-1)?.state === 'active', 5000, 'active');
    await tree.plug({ vid: 0x1209, pid: 1 });
    await rec.waitFor(() => rec.events.length === 1, 5000, 'device after bus appeared');
    // Bus goes away again (module unloaded): the device is removed and the source says so once.
    await tree.removeBus();
    await rec.waitFor(() => rec.events.length === 2, 5000, 'removal with the bus');
    await rec.waitFor(() => rec.statuses.at(-1)?.state === 'unavailable');
    expect(rec.statuses.filter((s) => s.state === 'unavailable')).toHaveLength(2);
    await tree.createBus();
    await tree.plug({ vid: 0x1209, pid: 2 });
    await rec.waitFor(() => rec.events.length === 3, 5000, 'device after bus came back');
    expect(rec.events[2]?.device.pid).toBe('0002');
  });

  it('releases every watch on stop', async () => {
    tree = await FakeUsbTree.create();
    await tree.plug({ vid: 1, pid: 2, bus: 3 });
    source = new DevfsSource({ devfsRoot: tree.devfsRoot });
    await source.start(new Recorder());
    expect(source.watchCount).toBe(3); // bus root + 001 + 003
    await source.stop();
    expect(source.watchCount).toBe(0);
  });
});

describe('DevfsSource read retry', () => {
  it('retries a node that is empty when it appears (created before it is readable)', async () => {
    const { mkdir, writeFile } = await import('node:fs/promises');
    const { encodeDescriptors } = await import('../../fakes/usb-tree.js');
    const tree = await FakeUsbTree.create();
    const source = new DevfsSource({ devfsRoot: tree.devfsRoot, readRetryDelaysMs: [5, 10, 20, 40, 80] });
    try {
      const rec = new Recorder();
      await source.start(rec);
      await mkdir(tree.nodePath(1, 9).replace(/\/009$/, ''), { recursive: true });
      await writeFile(tree.nodePath(1, 9), Buffer.alloc(0));
      await new Promise((r) => setTimeout(r, 20));
      expect(rec.events).toEqual([]);
      await writeFile(tree.nodePath(1, 9), encodeDescriptors({ vid: 0xcafe, pid: 0xbabe }));
      await rec.waitFor(() => rec.events.length === 1, 5000, 'device after the retry');
      expect(rec.events[0]?.device).toMatchObject({ vid: 'cafe', pid: 'babe', address: 9 });
      expect(source.unreadable.size).toBe(0);
    } finally {
      await source.stop();
      await tree.cleanup();
    }
  });
});
