/**
 * A fake sysfs/devfs tree for benchmarks, in the layout and write order of test/fakes/usb-tree.ts (sysfs
 * entry, interface, then the usbfs node, as the kernel does). One target port, `1-1`, plugged and
 * unplugged again and again; every plug gets a new address, as the kernel hands them out.
 */
import {
  accessSync,
  chmodSync,
  constants,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const VID = 0x1209;
export const PID = 0x0001;

export function ramTmpDir() {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return os.tmpdir();
  }
}

/** usbfs node content: device descriptor (USB 2.0 §9.6.1) + one configuration with one interface. */
function descriptors(vid, pid, strings) {
  const dev = Buffer.alloc(18);
  dev.writeUInt8(18, 0);
  dev.writeUInt8(1, 1);
  dev.writeUInt16LE(0x0200, 2);
  dev.writeUInt8(64, 7);
  dev.writeUInt16LE(vid, 8);
  dev.writeUInt16LE(pid, 10);
  dev.writeUInt16LE(0x0100, 12);
  dev.writeUInt8(strings ? 1 : 0, 14);
  dev.writeUInt8(strings ? 2 : 0, 15);
  dev.writeUInt8(strings ? 3 : 0, 16);
  dev.writeUInt8(1, 17);
  const cfg = Buffer.from([9, 2, 18, 0, 1, 1, 0, 0x80, 50, 9, 4, 0, 0, 0, 0xff, 0, 0, 0]);
  return Buffer.concat([dev, cfg]);
}

const pad3 = (n) => String(n).padStart(3, '0');
const hex4 = (n) => n.toString(16).padStart(4, '0');

export class Tree {
  constructor(prefix = 'replug-bench-') {
    this.root = mkdtempSync(path.join(ramTmpDir(), prefix));
    // Readable by an unprivileged agent too (the read-only state dir run drops root).
    chmodSync(this.root, 0o755);
    this.sys = path.join(this.root, 'sys');
    this.dev = path.join(this.root, 'dev');
    this.devices = path.join(this.sys, 'bus/usb/devices');
    this.busDir = path.join(this.dev, 'bus/usb/001');
    mkdirSync(this.devices, { recursive: true });
    mkdirSync(this.busDir, { recursive: true });
    const hub = path.join(this.devices, 'usb1');
    mkdirSync(hub);
    const attrs = { idVendor: '1d6b', idProduct: '0002', bcdDevice: '0601', bDeviceClass: '09', busnum: '1' };
    for (const [k, v] of Object.entries({ ...attrs, devnum: '1', devpath: '0', speed: '480' }))
      writeFileSync(path.join(hub, k), `${v}\n`);
    writeFileSync(path.join(this.busDir, '001'), descriptors(0x1d6b, 0x0002, false));
    this.nextAddress = 2;
    this.plugged = undefined;
  }

  plug(serial = 'BENCH1') {
    const address = this.nextAddress;
    this.nextAddress = address >= 127 ? 2 : address + 1;
    const dir = path.join(this.devices, '1-1');
    mkdirSync(dir);
    const attrs = {
      idVendor: hex4(VID),
      idProduct: hex4(PID),
      bcdDevice: '0100',
      bDeviceClass: '00',
      bNumConfigurations: '1',
      bConfigurationValue: '1',
      busnum: '1',
      devnum: String(address),
      devpath: '1',
      speed: '480',
      version: ' 2.00',
      manufacturer: 'replug',
      product: 'Bench',
      serial,
      uevent: `MAJOR=189\nMINOR=${address - 1}\nDEVNAME=bus/usb/001/${pad3(address)}\nDEVTYPE=usb_device\nPRODUCT=${VID.toString(16)}/${PID.toString(16)}/100\nBUSNUM=001\nDEVNUM=${pad3(address)}`,
    };
    for (const [k, v] of Object.entries(attrs)) writeFileSync(path.join(dir, k), `${v}\n`);
    const iface = path.join(this.devices, '1-1:1.0');
    mkdirSync(iface);
    writeFileSync(path.join(iface, 'bInterfaceClass'), 'ff\n');
    writeFileSync(path.join(iface, 'bInterfaceNumber'), '00\n');
    writeFileSync(path.join(this.busDir, pad3(address)), descriptors(VID, PID, true));
    this.plugged = address;
    return address;
  }

  unplug() {
    if (this.plugged === undefined) return;
    rmSync(path.join(this.devices, '1-1:1.0'), { recursive: true, force: true });
    rmSync(path.join(this.busDir, pad3(this.plugged)), { force: true });
    rmSync(path.join(this.devices, '1-1'), { recursive: true, force: true });
    this.plugged = undefined;
  }

  cleanup() {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/**
 * A host with `count` devices behind hubs, written at once (sysfs entry, interface, node per device, in
 * the kernel's order): per bus a hub at `B-1` with 7 hubs `B-1.H` behind it, 7 devices `B-1.H.P` behind
 * each, as many buses as needed. Device n has VID:PID 1209:0001 and serial `S<n>`. Returns the tree, the
 * devices (bus, address, portPath, serial) and how many entries a full listing has (devices + hubs).
 */
export function hubTree(count, prefix = 'replug-bench-hubs-') {
  const tree = new Tree(prefix);
  const devices = [];
  let entries = 0;
  for (let bus = 1, n = 0; n < count; bus++) {
    const busDir = path.join(tree.dev, 'bus/usb', pad3(bus));
    mkdirSync(busDir, { recursive: true });
    if (bus > 1) {
      const hub = path.join(tree.devices, `usb${bus}`);
      mkdirSync(hub);
      const attrs = { idVendor: '1d6b', idProduct: '0002', bcdDevice: '0601', bDeviceClass: '09' };
      for (const [k, v] of Object.entries({ ...attrs, busnum: bus, devnum: 1, devpath: '0', speed: '480' }))
        writeFileSync(path.join(hub, k), `${v}\n`);
      writeFileSync(path.join(busDir, '001'), descriptors(0x1d6b, 0x0002, false));
    }
    let address = 2;
    const add = (portPath, vid, pid, serial, cls) => {
      writeEntry(tree, { bus, address, portPath, vid, pid, serial, cls });
      entries++;
      return address++;
    };
    add(`${bus}-1`, 0x05e3, 0x0610, undefined, '09');
    for (let h = 1; h <= 7 && n < count; h++) {
      add(`${bus}-1.${h}`, 0x05e3, 0x0610, undefined, '09');
      for (let p = 1; p <= 7 && n < count; p++, n++) {
        const portPath = `${bus}-1.${h}.${p}`;
        const serial = `S${n}`;
        devices.push({ bus, address: add(portPath, VID, PID, serial, '00'), portPath, serial });
      }
    }
  }
  return { tree, devices, entries };
}

function writeEntry(tree, { bus, address, portPath, vid, pid, serial, cls }) {
  const dir = path.join(tree.devices, portPath);
  mkdirSync(dir);
  const attrs = {
    idVendor: hex4(vid),
    idProduct: hex4(pid),
    bcdDevice: '0100',
    bDeviceClass: cls,
    bNumConfigurations: '1',
    bConfigurationValue: '1',
    busnum: String(bus),
    devnum: String(address),
    devpath: portPath.slice(portPath.indexOf('-') + 1),
    speed: '480',
    version: ' 2.00',
    uevent: `MAJOR=189\nMINOR=${(bus - 1) * 128 + address - 1}\nDEVNAME=bus/usb/${pad3(bus)}/${pad3(address)}\nDEVTYPE=usb_device\nBUSNUM=${pad3(bus)}\nDEVNUM=${pad3(address)}`,
  };
  if (serial) Object.assign(attrs, { serial, manufacturer: 'replug', product: 'Bench' });
  for (const [k, v] of Object.entries(attrs)) writeFileSync(path.join(dir, k), `${v}\n`);
  // The devt link every kernel makes (/sys/dev/char/189:<minor> -> the device): devfs enrichment finds the
  // entry through it in one realpath. Without it every new node rescanned the whole tree (the fallback for
  // trees without /sys/dev), so the 100-target plug measured a fake tree's cost, not the agent's.
  const charDir = path.join(tree.sys, 'dev', 'char');
  mkdirSync(charDir, { recursive: true });
  const link = path.join(charDir, charName(bus, address));
  rmSync(link, { force: true });
  symlinkSync(path.relative(charDir, dir), link);
  const iface = path.join(tree.devices, `${portPath}:1.0`);
  mkdirSync(iface);
  writeFileSync(path.join(iface, 'bInterfaceClass'), cls === '09' ? '09\n' : 'ff\n');
  writeFileSync(path.join(iface, 'bInterfaceNumber'), '00\n');
  writeFileSync(
    path.join(tree.dev, 'bus/usb', pad3(bus), pad3(address)),
    descriptors(vid, pid, Boolean(serial)),
  );
}

/** Unplugs one device of a hubTree (interface, node, entry: the kernel's order); plug it back with replug(). */
export function unplugAt(tree, d) {
  rmSync(path.join(tree.devices, `${d.portPath}:1.0`), { recursive: true, force: true });
  rmSync(path.join(tree.dev, 'bus/usb', pad3(d.bus), pad3(d.address)), { force: true });
  rmSync(path.join(tree.sys, 'dev', 'char', charName(d.bus, d.address)), { force: true });
  rmSync(path.join(tree.devices, d.portPath), { recursive: true, force: true });
}

/** usb_new_device(): devt = MKDEV(189, (busnum - 1) * 128 + devnum - 1). */
const charName = (bus, address) => `189:${(bus - 1) * 128 + address - 1}`;

/** Plugs a hubTree device back at a new address (the next free one on its bus above `d.address`). */
export function replugAt(tree, d, address) {
  d.address = address;
  writeEntry(tree, {
    bus: d.bus,
    address,
    portPath: d.portPath,
    vid: VID,
    pid: PID,
    serial: d.serial,
    cls: '00',
  });
}
