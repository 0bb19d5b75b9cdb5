/**
 * A fake USB host in a temp dir: a sysfs tree and a devfs tree that the real sources read with real
 * inotify. Shared by the usb, session, MQTT, agent and benchmark tests.
 *
 * How the real thing looks, and where this fake simplifies:
 * - `/sys/bus/usb/devices/<name>` entries are SYMLINKS into `/sys/devices/pci.../usbN/...`; here they are
 *   plain directories (readers only follow them, so nothing depends on the difference).
 * - Entry names: `usbN` is the root hub of bus N; `1-1.4` is a device (bus 1, port 1, then port 4 of the
 *   hub behind it); `1-1.4:1.0` is interface 0 of configuration 1 of that device.
 * - Attribute files end with a newline: idVendor/idProduct/bcdDevice are 4 lowercase hex digits, busnum
 *   and devnum are decimal, devpath is the port path without the `N-` bus prefix (`1.4`), speed in Mbit/s.
 * - `/dev/bus/usb/BBB/DDD` are usbfs character nodes (major 189); reading one returns the 18-byte device
 *   descriptor followed by the configuration descriptors. Here they are regular files with that content.
 * - Order (drivers/base/core.c device_add / device_del): on plug the kernel creates the sysfs entry first,
 *   then devtmpfs creates the node; on unplug the interfaces go first, then the devtmpfs node, then the
 *   sysfs entry. The fake follows that order.
 * - Addresses (devnum) are handed out like hub_port_connect() does: the next one after the last assigned
 *   on that bus, wrapping after 127 and skipping ones in use, so a replug gets a NEW address.
 * - A host without USB (no usbcore, like a CI container) has neither /sys/bus/usb nor /dev/bus/usb:
 *   `removeBus()` / `createBus()` simulate that.
 * - The methods are async but write synchronously: on a loaded 2-core CI box the thread-pool round trips
 *   of ~20 async fs calls per plug dominated the replug storm, and sync writes also make each plug
 *   appear to readers as the kernel's does: complete sysfs entry first, then a node that already reads.
 */
import { accessSync, constants, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hex4 } from '../../src/usb/ids.js';
import { deviceKey, type UsbDevice } from '../../src/usb/types.js';
import { encodeDescriptors } from './usb-descriptors.js';

export interface PlugSpec {
  vid: number | string;
  pid: number | string;
  serial?: string;
  manufacturer?: string;
  product?: string;
  /** Bus number; 1 by default. The bus's root hub is created when missing. */
  bus?: number;
  /** devnum; auto-assigned like the kernel when omitted. */
  address?: number;
  /** e.g. `1-1.4`; the first free `<bus>-N` when omitted. */
  portPath?: string;
  /** Mbit/s as sysfs prints it; '480' by default. */
  speed?: string;
  /** 4-digit hex; '0100' by default. */
  bcdDevice?: string;
  /** Device class byte; 0 (per interface) by default. */
  deviceClass?: number;
  /** Replace the usbfs node content (e.g. garbage or a truncated descriptor for error-path tests). */
  nodeContent?: Buffer;
  /** Skip creating the devfs node (e.g. a container that only sees sysfs). */
  noNode?: boolean;
}

export interface FakeUsbTreeOptions {
  /** Start with a USB bus (bus 1 root hub); true by default. false = a host without USB. */
  bus?: boolean;
  /** Where to create the temp dir; os.tmpdir() by default. See ramTmpDir() for storms. */
  parentDir?: string;
}

/**
 * A RAM-backed parent for trees that churn thousands of files (the replug storm): /dev/shm when it is a
 * writable directory (tmpfs on every mainstream Linux), else os.tmpdir(). On a loaded CI box with /tmp on
 * ext4 each small write cost ~1 ms, which made the storm 5x slower than the code under test.
 */
export function ramTmpDir(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

function toId(v: number | string): number {
  return typeof v === 'number' ? v : Number.parseInt(v.replace(/^0x/i, ''), 16);
}

export { encodeDescriptors };

const pad3 = (n: number) => String(n).padStart(3, '0');

export class FakeUsbTree {
  readonly root: string;
  /** Stands for `/sys`. */
  readonly sysfsRoot: string;
  /** Stands for `/dev`. */
  readonly devfsRoot: string;
  private readonly plugged = new Map<string, UsbDevice>(); // by portPath
  private readonly lastAddress = new Map<number, number>();
  private readonly buses = new Set<number>();

  private constructor(root: string) {
    this.root = root;
    this.sysfsRoot = join(root, 'sys');
    this.devfsRoot = join(root, 'dev');
  }

  static async create(options: FakeUsbTreeOptions = {}): Promise<FakeUsbTree> {
    const root = await mkdtemp(join(options.parentDir ?? tmpdir(), 'replug-usb-'));
    const tree = new FakeUsbTree(root);
    mkdirSync(tree.sysfsRoot, { recursive: true });
    mkdirSync(tree.devfsRoot, { recursive: true });
    if (options.bus !== false) await tree.createBus();
    return tree;
  }

  get sysfsDevicesDir(): string {
    return join(this.sysfsRoot, 'bus', 'usb', 'devices');
  }

  get devfsBusDir(): string {
    return join(this.devfsRoot, 'bus', 'usb');
  }

  nodePath(bus: number, address: number): string {
    return join(this.devfsBusDir, pad3(bus), pad3(address));
  }

  /** Devices currently plugged (root hubs excluded). */
  devices(): UsbDevice[] {
    return [...this.plugged.values()];
  }

  /** Creates /sys/bus/usb and /dev/bus/usb with the root hub of `bus` (usbcore loaded, HCD bound). */
  async createBus(bus = 1): Promise<void> {
    mkdirSync(this.sysfsDevicesDir, { recursive: true });
    this.writeRootHub(bus);
  }

  /** Removes /sys/bus/usb and /dev/bus/usb entirely: a host without USB. Plugged devices vanish. */
  async removeBus(): Promise<void> {
    rmSync(this.devfsBusDir, { recursive: true, force: true });
    rmSync(join(this.sysfsRoot, 'bus', 'usb'), { recursive: true, force: true });
    this.plugged.clear();
    this.buses.clear();
    this.lastAddress.clear();
  }

  async plug(spec: PlugSpec): Promise<UsbDevice> {
    const bus = spec.bus ?? 1;
    if (!this.buses.has(bus)) this.writeRootHub(bus);
    const portPath = spec.portPath ?? this.freePort(bus);
    if (this.plugged.has(portPath)) throw new Error(`fake usb tree: port ${portPath} is already in use`);
    const address = spec.address ?? this.nextAddress(bus);
    this.lastAddress.set(bus, address);
    const vid = toId(spec.vid);
    const pid = toId(spec.pid);
    const bcdDevice = spec.bcdDevice ?? '0100';
    const deviceClass = spec.deviceClass ?? 0;
    const speed = spec.speed ?? '480';
    const device: UsbDevice = {
      key: '',
      vid: hex4(vid),
      pid: hex4(pid),
      bus,
      address,
      portPath,
      speed,
      bcdDevice,
      deviceClass: deviceClass.toString(16).padStart(2, '0'),
      devNode: this.nodePath(bus, address),
    };
    if (spec.serial !== undefined) device.serial = spec.serial;
    if (spec.manufacturer !== undefined) device.manufacturer = spec.manufacturer;
    if (spec.product !== undefined) device.product = spec.product;
    device.key = deviceKey(device);
    if (spec.noNode) delete device.devNode;

    // sysfs first (device_add), then the interface, then the devtmpfs node.
    const dir = join(this.sysfsDevicesDir, portPath);
    mkdirSync(dir, { recursive: true });
    const devpath = portPath.slice(portPath.indexOf('-') + 1);
    const attrs: Record<string, string> = {
      idVendor: device.vid,
      idProduct: device.pid,
      bcdDevice,
      bDeviceClass: device.deviceClass ?? '00',
      bNumConfigurations: '1',
      bConfigurationValue: '1',
      busnum: String(bus),
      devnum: String(address),
      devpath,
      speed,
      version: ' 2.00',
      uevent: `MAJOR=189\nMINOR=${(bus - 1) * 128 + address - 1}\nDEVNAME=bus/usb/${pad3(bus)}/${pad3(address)}\nDEVTYPE=usb_device\nPRODUCT=${vid.toString(16)}/${pid.toString(16)}/${Number.parseInt(bcdDevice, 16).toString(16)}\nBUSNUM=${pad3(bus)}\nDEVNUM=${pad3(address)}`,
    };
    if (spec.serial !== undefined) attrs.serial = spec.serial;
    if (spec.manufacturer !== undefined) attrs.manufacturer = spec.manufacturer;
    if (spec.product !== undefined) attrs.product = spec.product;
    for (const [k, v] of Object.entries(attrs)) writeFileSync(join(dir, k), `${v}\n`);
    const iface = join(this.sysfsDevicesDir, `${portPath}:1.0`);
    mkdirSync(iface, { recursive: true });
    writeFileSync(join(iface, 'bInterfaceClass'), 'ff\n');
    writeFileSync(join(iface, 'bInterfaceNumber'), '00\n');

    if (!spec.noNode) {
      const content =
        spec.nodeContent ??
        encodeDescriptors({
          vid,
          pid,
          bcdDevice: Number.parseInt(bcdDevice, 16),
          deviceClass,
          hasStrings: {
            manufacturer: spec.manufacturer !== undefined,
            product: spec.product !== undefined,
            serial: spec.serial !== undefined,
          },
        });
      mkdirSync(join(this.devfsBusDir, pad3(bus)), { recursive: true });
      writeFileSync(this.nodePath(bus, address), content);
    }
    this.plugged.set(portPath, device);
    return { ...device };
  }

  /** Unplugs by device (as returned by plug) or by port path. Interfaces, then node, then sysfs entry. */
  async unplug(target: Pick<UsbDevice, 'portPath'> | string): Promise<void> {
    const portPath = typeof target === 'string' ? target : target.portPath;
    const device = portPath === undefined ? undefined : this.plugged.get(portPath);
    if (!device || portPath === undefined) throw new Error(`fake usb tree: nothing plugged at ${portPath}`);
    this.plugged.delete(portPath);
    rmSync(join(this.sysfsDevicesDir, `${portPath}:1.0`), { recursive: true, force: true });
    rmSync(this.nodePath(device.bus, device.address), { force: true });
    rmSync(join(this.sysfsDevicesDir, portPath), { recursive: true, force: true });
  }

  async cleanup(): Promise<void> {
    rmSync(this.root, { recursive: true, force: true });
  }

  private writeRootHub(bus: number): void {
    this.buses.add(bus);
    const dir = join(this.sysfsDevicesDir, `usb${bus}`);
    mkdirSync(dir, { recursive: true });
    const attrs: Record<string, string> = {
      idVendor: '1d6b',
      idProduct: '0002',
      bcdDevice: '0601',
      bDeviceClass: '09',
      busnum: String(bus),
      devnum: '1',
      devpath: '0',
      speed: '480',
      manufacturer: 'Linux 6.1.0 xhci-hcd',
      product: 'xHCI Host Controller',
      serial: `0000:00:0${bus}.0`,
    };
    for (const [k, v] of Object.entries(attrs)) writeFileSync(join(dir, k), `${v}\n`);
    mkdirSync(join(this.devfsBusDir, pad3(bus)), { recursive: true });
    writeFileSync(
      this.nodePath(bus, 1),
      encodeDescriptors({ vid: 0x1d6b, pid: 0x0002, bcdDevice: 0x0601, deviceClass: 9 }),
    );
    if (!this.lastAddress.has(bus)) this.lastAddress.set(bus, 1);
  }

  private freePort(bus: number): string {
    for (let n = 1; ; n++) {
      const p = `${bus}-${n}`;
      if (!this.plugged.has(p)) return p;
    }
  }

  private nextAddress(bus: number): number {
    const used = new Set([
      1,
      ...[...this.plugged.values()].filter((d) => d.bus === bus).map((d) => d.address),
    ]);
    let a = this.lastAddress.get(bus) ?? 1;
    for (let i = 0; i < 127; i++) {
      a = a >= 127 ? 2 : a + 1;
      if (!used.has(a)) return a;
    }
    throw new Error(`fake usb tree: bus ${bus} has no free address`);
  }
}
