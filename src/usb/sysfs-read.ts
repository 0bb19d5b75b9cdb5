/**
 * Reading `/sys/bus/usb/devices` (Documentation/ABI/stable/sysfs-bus-usb). Entries there are symlinks
 * into /sys/devices; readFile follows them. Names:
 *   usbN        root hub of bus N (the host controller; lsusb shows it, `usb` v3 getDevices() does not)
 *   1-1.4       a device: bus 1, root port 1, port 4 of the hub behind it (the "port path")
 *   1-1.4:1.0   interface 0 of configuration 1 of that device: not a device, skipped
 * Attributes end with "\n". A device can vanish between readdir and readFile (unplugged mid-scan): every
 * read failure means "not there (yet)", never an exception to the caller.
 */
import { readlinkSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { sharedUsbFs, type UsbFs, UsbFsError } from './bounded-io.js';
import { deviceLock } from './devfs-read.js';
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

export interface ReadOptions {
  /** The bounded reader (src/usb/bounded-io.ts); the process-wide one by default. */
  fs?: UsbFs;
}

/** What reading one attribute gave: its text, nothing (gone, never existed, not a file), or "busy". */
export type AttrRead =
  | { kind: 'value'; text: string }
  | { kind: 'absent' }
  /** The read is stuck in the kernel (device lock) or refused while another is: try again later. */
  | { kind: 'busy'; settled: Promise<void> };

const utf8 = new TextDecoder('utf-8');

/** One attribute without its trailing newline. `lock`: the device lock key, for attributes that take it. */
export async function readAttrResult(
  dir: string,
  name: string,
  options: ReadOptions & { lock?: string } = {},
): Promise<AttrRead> {
  try {
    // Concatenated, not path.join: dir is already joined and name is one of replug's own attribute
    // names, and join's normalising was 5 % of a replug storm's allocation (bench/footprint.mjs).
    const bytes = await (options.fs ?? sharedUsbFs).readAttr(`${dir}/${name}`, options.lock);
    return { kind: 'value', text: utf8.decode(bytes).replace(/\n$/, '') };
  } catch (err) {
    if (err instanceof UsbFsError && (err.code === 'ETIMEDOUT' || err.code === 'EBUSY')) {
      return { kind: 'busy', settled: err.settled };
    }
    return { kind: 'absent' };
  }
}

/** One attribute without its trailing newline; undefined when unreadable (gone, never existed, busy). */
export async function readAttr(
  dir: string,
  name: string,
  options: ReadOptions = {},
): Promise<string | undefined> {
  const r = await readAttrResult(dir, name, options);
  return r.kind === 'value' ? r.text : undefined;
}

function parseDecimal(text: string | undefined): number | undefined {
  if (text === undefined || !/^\s*\d+\s*$/.test(text)) return undefined;
  return Number.parseInt(text, 10);
}

/** bus and devnum of an entry: the two reads a rescan needs to tell a replug at the same port. */
export async function readInstance(
  devicesDir: string,
  name: string,
  options: ReadOptions = {},
): Promise<{ bus: number; address: number } | undefined> {
  const r = await readInstanceResult(devicesDir, name, options);
  return r === 'busy' ? undefined : r;
}

/**
 * readInstance, telling `busy` (a read past its bound or refused: the kernel holds the thread pool, the
 * entry is still there) from gone or incomplete (undefined).
 */
export async function readInstanceResult(
  devicesDir: string,
  name: string,
  options: ReadOptions = {},
): Promise<{ bus: number; address: number } | 'busy' | undefined> {
  const dir = join(devicesDir, name);
  const [busnum, devnum] = await Promise.all([
    readAttrResult(dir, 'busnum', options),
    readAttrResult(dir, 'devnum', options),
  ]);
  if (busnum.kind === 'busy' || devnum.kind === 'busy') return 'busy';
  const bus = parseDecimal(busnum.kind === 'value' ? busnum.text : undefined);
  const address = parseDecimal(devnum.kind === 'value' ? devnum.text : undefined);
  return bus === undefined || address === undefined ? undefined : { bus, address };
}

/** Attributes whose show() does not take the device lock: read in parallel. */
const PLAIN = ['idVendor', 'idProduct', 'busnum', 'devnum', 'speed', 'bcdDevice', 'bDeviceClass'] as const;
/** What a plug's first report needs when the devt link already named the instance. */
const QUICK = ['idVendor', 'idProduct'] as const;
/** usb_string_attr() in drivers/usb/core/sysfs.c takes the device lock: read one at a time per device. */
const LOCKED = ['serial', 'manufacturer', 'product'] as const;

/**
 * The full identity of one entry, undefined while it is incomplete (the kernel creates the directory
 * before its attribute files, so a scan can land in between) or after it vanished, or `busy` while the
 * kernel holds the device lock past the read bound (a driver still probing).
 */
export async function readSysfsEntry(
  devicesDir: string,
  name: string,
  devfsRoot?: string,
  options: ReadOptions = {},
): Promise<UsbDevice | undefined | { busy: Promise<void> }> {
  const dir = join(devicesDir, name);
  const values = await Promise.all(PLAIN.map((n) => readAttr(dir, n, options)));
  const a = Object.fromEntries(PLAIN.map((n, i) => [n, values[i]])) as Record<
    (typeof PLAIN)[number],
    string | undefined
  >;
  const vid = a.idVendor === undefined ? undefined : parseHexId(a.idVendor);
  const pid = a.idProduct === undefined ? undefined : parseHexId(a.idProduct);
  const bus = parseDecimal(a.busnum);
  const address = parseDecimal(a.devnum);
  if (vid === undefined || pid === undefined || bus === undefined || address === undefined) return undefined;
  const device: UsbDevice = { key: '', vid: hex4(vid), pid: hex4(pid), bus, address };
  if (isDeviceEntry(name)) device.portPath = name;
  const lock = deviceLock(bus, address);
  for (const n of LOCKED) {
    const r = await readAttrResult(dir, n, { ...options, lock });
    if (r.kind === 'busy') return { busy: r.settled };
    // Empty strings happen (devices with an iSerial index whose string read failed): treat as absent.
    if (r.kind === 'value' && r.text) device[n] = r.text;
  }
  if (a.speed) device.speed = a.speed.trim();
  if (a.bcdDevice) device.bcdDevice = a.bcdDevice.trim().toLowerCase();
  if (a.bDeviceClass) device.deviceClass = a.bDeviceClass.trim().toLowerCase();
  if (devfsRoot !== undefined) device.devNode = devNodePath(devfsRoot, bus, address);
  device.key = deviceKey(device);
  return device;
}

/**
 * The identity of one entry from the attributes that take no lock, read in the caller's tick (issue 17):
 * vid, pid, bus, address, port path, speed, bcdDevice and class, without the strings (serial,
 * manufacturer, product), which wait for the device lock while the kernel probes drivers. undefined when
 * the entry is incomplete or gone, or when the reader has no synchronous calls.
 */
export function readPlainSysfsEntrySync(
  devicesDir: string,
  name: string,
  devfsRoot?: string,
  options: ReadOptions & { instance?: { bus: number; address: number } } = {},
): UsbDevice | undefined {
  const fs = options.fs ?? sharedUsbFs;
  if (!fs.canReadSync) return undefined;
  const dir = join(devicesDir, name);
  const a: Partial<Record<(typeof PLAIN)[number], string>> = {};
  // Found through its devt link, the entry's bus and devnum are the link's own: the ids are enough.
  if (options.instance) {
    a.busnum = String(options.instance.bus);
    a.devnum = String(options.instance.address);
  }
  for (const n of options.instance ? QUICK : PLAIN) {
    try {
      const bytes = fs.readAttrSync(`${dir}/${n}`); // as in readAttrResult
      if (bytes !== undefined) a[n] = utf8.decode(bytes).replace(/\n$/, '');
    } catch {
      // Missing (not created yet, or gone) or not a regular file: the entry is incomplete.
    }
  }
  const vid = a.idVendor === undefined ? undefined : parseHexId(a.idVendor);
  const pid = a.idProduct === undefined ? undefined : parseHexId(a.idProduct);
  const bus = parseDecimal(a.busnum);
  const address = parseDecimal(a.devnum);
  if (vid === undefined || pid === undefined || bus === undefined || address === undefined) return undefined;
  const device: UsbDevice = { key: '', vid: hex4(vid), pid: hex4(pid), bus, address };
  if (isDeviceEntry(name)) device.portPath = name;
  if (a.speed) device.speed = a.speed.trim();
  if (a.bcdDevice) device.bcdDevice = a.bcdDevice.trim().toLowerCase();
  if (a.bDeviceClass) device.deviceClass = a.bDeviceClass.trim().toLowerCase();
  if (devfsRoot !== undefined) device.devNode = devNodePath(devfsRoot, bus, address);
  device.key = deviceKey(device);
  return device;
}

/** readSysfsEntry, with a busy entry counted as incomplete. */
export async function readSysfsDevice(
  devicesDir: string,
  name: string,
  devfsRoot?: string,
  options: ReadOptions = {},
): Promise<UsbDevice | undefined> {
  const r = await readSysfsEntry(devicesDir, name, devfsRoot, options);
  return r && 'busy' in r ? undefined : r;
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
  options: { devfsRoot?: string; includeRootHubs?: boolean } & ReadOptions = {},
): Promise<SysfsListing> {
  const dir = sysfsDevicesDir(sysfsRoot);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return { bus: false, reason: noBusReason(sysfsRoot) };
  }
  const wanted = names.filter((n) => isDeviceEntry(n) || (options.includeRootHubs && isRootHubEntry(n)));
  const read = await Promise.all(wanted.map((n) => readSysfsDevice(dir, n, options.devfsRoot, options)));
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
 * The device directory the devt link names, read in the caller's tick: one readlink (sysfs links are
 * relative, `../../devices/pci0000:00/.../usb1/1-1`) instead of realpath's lstat of every component.
 * undefined without the link (fake trees, some containers) or when it names no device entry.
 */
export function devtEntry(
  sysfsRoot: string,
  bus: number,
  address: number,
): { dir: string; name: string } | undefined {
  const link = usbDevCharLink(sysfsRoot, bus, address);
  let target: string;
  try {
    target = resolve(dirname(link), readlinkSync(link));
  } catch {
    return undefined;
  }
  const name = basename(target);
  return isDeviceEntry(name) ? { dir: dirname(target), name } : undefined;
}

/**
 * Finds the sysfs identity of bus+address (devfs enrichment). First through the devt link (one readlink,
 * then one round of attribute reads); trees without /sys/dev (the fakes, some containers) fall back to an
 * index of the bus entries. The index is shared by every lookup and rebuilt at most once behind the scan
 * in flight: one scan per lookup of 2,000 new nodes was 2,000 x 2,000 reads at once (issue 12).
 */
export class SysfsIndex {
  private byInstance = new Map<string, string>();
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  constructor(
    private readonly sysfsRoot: string,
    private readonly options: ReadOptions = {},
  ) {}

  /** The device, undefined when sysfs does not have it, or `busy` while its strings are stuck. */
  async find(
    bus: number,
    address: number,
    devfsRoot?: string,
  ): Promise<UsbDevice | undefined | { busy: Promise<void> }> {
    const viaLink = await this.viaLink(bus, address, devfsRoot);
    if (viaLink !== undefined) return viaLink;
    const dir = sysfsDevicesDir(this.sysfsRoot);
    const id = `${bus}-${address}`;
    for (let round = 0; round < 2; round++) {
      const name = this.byInstance.get(id);
      if (name !== undefined) {
        const r = await readSysfsEntry(dir, name, devfsRoot, this.options);
        if (r && 'busy' in r) return r;
        if (r && r.bus === bus && r.address === address) return r;
      }
      if (round === 0) await this.freshScan();
    }
    return undefined;
  }

  /**
   * The lock-free identity of bus+address in the caller's tick (readPlainSysfsEntrySync): through the devt
   * link, else the entry the index last knew for that instance. No scan: undefined when neither knows it.
   */
  findPlainSync(bus: number, address: number, devfsRoot?: string): UsbDevice | undefined {
    const linked = devtEntry(this.sysfsRoot, bus, address);
    if (linked) {
      const instance = { bus, address };
      return readPlainSysfsEntrySync(linked.dir, linked.name, devfsRoot, { ...this.options, instance });
    }
    const name = this.byInstance.get(`${bus}-${address}`);
    if (name === undefined) return undefined;
    const found = readPlainSysfsEntrySync(sysfsDevicesDir(this.sysfsRoot), name, devfsRoot, this.options);
    return found && found.bus === bus && found.address === address ? found : undefined;
  }

  /** Forgets what the index knew (the source stopped). */
  clear(): void {
    this.byInstance = new Map();
  }

  private async viaLink(
    bus: number,
    address: number,
    devfsRoot: string | undefined,
  ): Promise<UsbDevice | { busy: Promise<void> } | undefined> {
    const linked = devtEntry(this.sysfsRoot, bus, address);
    if (!linked) return undefined;
    const r = await readSysfsEntry(linked.dir, linked.name, devfsRoot, this.options);
    if (r && 'busy' in r) return r;
    return r && r.bus === bus && r.address === address ? r : undefined;
  }

  /** A scan that starts after this call: joins the next one when a scan is already listing. */
  private freshScan(): Promise<void> {
    if (!this.running) {
      this.running = this.scan().finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    this.next ??= this.running.then(() => {
      this.next = undefined;
      return this.freshScan();
    });
    return this.next;
  }

  private async scan(): Promise<void> {
    const dir = sysfsDevicesDir(this.sysfsRoot);
    let names: string[];
    try {
      names = (await readdir(dir)).filter(isDeviceEntry);
    } catch {
      this.byInstance = new Map();
      return;
    }
    const instances = await Promise.all(names.map((name) => readInstance(dir, name, this.options)));
    const map = new Map<string, string>();
    names.forEach((name, i) => {
      const inst = instances[i];
      if (inst) map.set(`${inst.bus}-${inst.address}`, name);
    });
    this.byInstance = map;
  }
}

/** One lookup without a shared index (tests, one-off callers). */
export async function findSysfsDevice(
  sysfsRoot: string,
  bus: number,
  address: number,
  devfsRoot?: string,
): Promise<UsbDevice | undefined> {
  const r = await new SysfsIndex(sysfsRoot).find(bus, address, devfsRoot);
  return r && 'busy' in r ? undefined : r;
}
