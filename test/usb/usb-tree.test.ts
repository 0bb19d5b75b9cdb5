import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeUsbTree } from '../fakes/usb-tree.js';

describe('FakeUsbTree', () => {
  let tree: FakeUsbTree | undefined;
  afterEach(async () => {
    await tree?.cleanup();
    tree = undefined;
  });

  it('writes sysfs attributes and a usbfs node with the device descriptor', async () => {
    tree = await FakeUsbTree.create();
    const d = await tree.plug({ vid: 0x1209, pid: '8566', serial: 'ABC', product: 'Probe' });
    expect(d).toMatchObject({
      vid: '1209',
      pid: '8566',
      bus: 1,
      address: 2,
      portPath: '1-1',
      key: 'serial:ABC',
    });
    const dir = join(tree.sysfsRoot, 'bus/usb/devices/1-1');
    expect(await readFile(join(dir, 'idProduct'), 'utf8')).toBe('8566\n');
    expect(await readFile(join(dir, 'devnum'), 'utf8')).toBe('2\n');
    expect(await readFile(join(dir, 'devpath'), 'utf8')).toBe('1\n');
    const node = await readFile(join(tree.devfsRoot, 'bus/usb/001/002'));
    expect(node.length).toBe(36);
    expect(node.readUInt16LE(10)).toBe(0x8566);
    expect((await readdir(tree.sysfsDevicesDir)).sort()).toEqual(['1-1', '1-1:1.0', 'usb1']);
  });

  it('gives a replugged device a new address and removes everything on unplug', async () => {
    tree = await FakeUsbTree.create();
    const a = await tree.plug({ vid: 1, pid: 2 });
    await tree.unplug(a);
    const b = await tree.plug({ vid: 1, pid: 2 });
    expect(b.address).toBe(a.address + 1);
    await tree.unplug('1-1');
    await expect(stat(tree.nodePath(1, b.address))).rejects.toThrow();
    expect(await readdir(tree.sysfsDevicesDir)).toEqual(['usb1']);
  });

  it('simulates a host without a USB bus', async () => {
    tree = await FakeUsbTree.create({ bus: false });
    await expect(stat(join(tree.sysfsRoot, 'bus/usb'))).rejects.toThrow();
    await tree.createBus();
    await tree.plug({ vid: 1, pid: 2 });
    await tree.removeBus();
    await expect(stat(tree.devfsBusDir)).rejects.toThrow();
    expect(tree.devices()).toEqual([]);
  });
});
