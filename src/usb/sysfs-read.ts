/**
 * Reading `/sys/bus/usb/devices` (Documentation/ABI/stable/sysfs-bus-usb). Entries there are symlinks
 * into /sys/devices; readFile follows them. Names:
 *   usbN        root hub of bus N (the host controller; lsusb shows it, `usb` v3 getDevices() does not)
 *   1-1.4       a device: bus 1, root port 1, port 4 of the hub behind it (the "port path")
 *   1-1.4:1.0   interface 0 of configuration 1 of that device: not a device, skipped
 * Attributes end with "\n". A device can vanish between readdir and readFile (unplugged mid-scan): every
 * read failure means "not there (yet)", never an exception to the caller.
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { hex4, parseHexId } from './ids.js';
import { deviceKey, type UsbDevice } from './types.js';

const DEVICE_ENTRY = /^\d+-\d+(?:\.\d+)*$/;
const ROOT_HUB_ENTRY = /^usb\d+$/;

export function isDeviceEntry(name: string): boolean {
  return DEVICE_ENTRY.test(name);
}

export function isRootHubEntry(name: string): boolean {
  return ROOT_HUB_ENTRY.test(name);
}

export function sysfsDevicesDir(sysfsRoot: string): string {
  return join(sysfsRoot, 'bus', 'usb', 'devices');
}

/** `<devfsRoot>/bus/usb/BBB/DDD`, the usbfs node of a device instance. */
export function devNodePath(devfsRoot: string, bus: number, address: number): string {
  return join(devfsRoot, 'bus', 'usb', String(bus).padStart(3, '0'), String(address).padStart(3, '0'));
}

/** One attribute without its trailing newline; undefined when unreadable (gone, or never existed). */
export async function readAttr(dir: string, name: string): Promise<string | undefined> {
  try {
    const text = await readFile(join(dir, name), 'utf8');
    return text.replace(/\n$/, '');
  } catch {
    return undefined;
  }
}

function parseDecimal(text: string | undefined): number | undefined {
  if (text === undefined || !/^\s*\d+\s*$/.test(text)) return undefined;
  return Number.parseInt(text, 10);
}

/** bus and devnum of an entry: the two reads a rescan needs to tell a replug at the same port. */
export async function readInstance(
  devicesDir: string,
  name: string,
): Promise<{ bus: number; address: number } | undefined> {
  const dir = join(devicesDir, name);
  const [busnum, devnum] = await Promise.all([readAttr(dir, 'busnum'), readAttr(dir, 'devnum')]);
  const bus = parseDecimal(busnum);
  const address = parseDecimal(devnum);
  return bus === undefined || address === undefined ? undefined : { bus, address };
}

/**
 * The full identity of one entry, or undefined while it is incomplete (the kernel creates the directory
 * before its attribute files, so a scan can land in between) or after it vanished.
 */
export async function readSysfsDevice(
  devicesDir: string,
  name: string,
  devfsRoot?: string,
): Promise<UsbDevice | undefined> {
  const dir = join(devicesDir, name);
  const names = [
    'idVendor',
    'idProduct',
    'busnum',
    'devnum',
    'serial',
    'manufacturer',
    'product',
    'speed',
    'bcdDevice',
    'bDeviceClass',
  ] as const;
  const values = await Promise.all(names.map((n) => readAttr(dir, n)));
  const a = Object.fromEntries(names.map((n, i) => [n, values[i]])) as Record<
    (typeof names)[number],
    string | undefined
  >;
  const vid = a.idVendor === undefined ? undefined : parseHexId(a.idVendor);
  const pid = a.idProduct === undefined ? undefined : parseHexId(a.idProduct);
  const bus = parseDecimal(a.busnum);
  const address = parseDecimal(a.devnum);
  if (vid === undefined || pid === undefined || bus === undefined || address === undefined) return undefined;
  const device: UsbDevice = { key: '', vid: hex4(vid), pid: hex4(pid), bus, address };
  if (isDeviceEntry(name)) device.portPath = name;
  // Empty strings happen (devices with an iSerial index whose string read failed): treat as absent.
  if (a.serial) device.serial = a.serial;
  if (a.manufacturer) device.manufacturer = a.manufacturer;
  if (a.product) device.product = a.product;
  if (a.speed) device.speed = a.speed.trim();
  if (a.bcdDevice) device.bcdDevice = a.bcdDevice.trim().toLowerCase();
  if (a.bDeviceClass) device.deviceClass = a.bDeviceClass.trim().toLowerCase();
  if (devfsRoot !== undefined) device.devNode = devNodePath(devfsRoot, bus, address);
  device.key = deviceKey(device);
  return device;
}

export type SysfsListing = { bus: false; reason: string } | { bus: true; devices: UsbDevice[] };

/** Whether `<sysfsRoot>/bus/usb` exists: absent when usbcore is not loaded (VMs, CI containers). */
export async function hasUsbBus(sysfsRoot: string): Promise<boolean> {
  try {
    return (await stat(join(sysfsRoot, 'bus', 'usb'))).isDirectory();
  } catch {
    return false;
  }
}

export function noBusReason(sysfsRoot: string): string {
  return `no USB bus on this host (${join(sysfsRoot, 'bus', 'usb')} is missing)`;
}

/** A full listing: devices, plus root hubs when asked. Sorted by bus, then port path. */
export async function listSysfsDevices(
  sysfsRoot: string,
  options: { devfsRoot?: string; includeRootHubs?: boolean } = {},
): Promise<SysfsListing> {
  const dir = sysfsDevicesDir(sysfsRoot);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return { bus: false, reason: noBusReason(sysfsRoot) };
  }
  const wanted = names.filter((n) => isDeviceEntry(n) || (options.includeRootHubs && isRootHubEntry(n)));
  const read = await Promise.all(wanted.map((n) => readSysfsDevice(dir, n, options.devfsRoot)));
  const devices = read.filter((d): d is UsbDevice => d !== undefined);
  devices.sort((x, y) => x.bus - y.bus || x.address - y.address);
  return { bus: true, devices };
}

/**
 * `/sys/dev/char/189:<minor>`, the link the kernel makes for the usb_device's devt: usb_new_device() sets
 * devt = MKDEV(USB_DEVICE_MAJOR, (busnum - 1) * 128 + devnum - 1).
 */
export function usbDevCharLink(sysfsRoot: string, bus: number, address: number): string {
  return join(sysfsRoot, 'dev', 'char', `189:${(bus - 1) * 128 + address - 1}`);
}

/**
 * Finds the sysfs identity of bus+address (devfs enrichment). Undefined when sysfs does not have it.
 * First through the devt link (one realpath, then one parallel round of attribute reads), else by
 * scanning the bus's entries in parallel (trees without /sys/dev, like the fakes). The scan used to read
 * the entries one after the other: every read is a thread-pool round trip, and on a loaded single-CPU
 * machine (the TCG lab) those cost tens of ms each, so a bus with a hub and a few devices took seconds.
 */
export async function findSysfsDevice(
  sysfsRoot: string,
  bus: number,
  address: number,
  devfsRoot?: string,
): Promise<UsbDevice | undefined> {
  let target: string | undefined;
  try {
    target = await realpath(usbDevCharLink(sysfsRoot, bus, address));
  } catch {
    target = undefined;
  }
  if (target !== undefined) {
    const name = basename(target);
    if (isDeviceEntry(name)) {
      const device = await readSysfsDevice(dirname(target), name, devfsRoot);
      if (device && device.bus === bus && device.address === address) return device;
    }
  }
  const dir = sysfsDevicesDir(sysfsRoot);
  let names: string[];
  try {
    names = (await readdir(dir)).filter(isDeviceEntry);
  } catch {
    return undefined;
  }
  // Only entries on this bus can match: the port path starts with `<bus>-`.
  const candidates = names.filter((n) => n.startsWith(`${bus}-`));
  const instances = await Promise.all(candidates.map((name) => readInstance(dir, name)));
  const match = candidates.find((_, i) => instances[i]?.bus === bus && instances[i]?.address === address);
  return match === undefined ? undefined : readSysfsDevice(dir, match, devfsRoot);
}
