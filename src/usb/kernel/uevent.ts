/**
 * The kernel's uevent datagram and the USB identity in it: pure parsing, shared by the uevent detection
 * source (src/usb/sources/uevent.ts) and `replug relay` (src/relay), which re-sends the same messages in
 * udev's format.
 *
 * The kernel broadcasts `ACTION@DEVPATH\0KEY=VALUE\0...` on NETLINK_KOBJECT_UEVENT group 1
 * (lib/kobject_uevent.c `kobject_uevent_env`).
 */
import { basename } from 'node:path';
import { hex4 } from '../ids.js';

/** One kernel uevent: the header line's action and devpath, and the KEY=VALUE environment in order. */
export interface KernelUevent {
  action: string;
  devpath: string;
  /** Properties in the order the kernel sent them (ACTION, DEVPATH, SUBSYSTEM, ..., SEQNUM). */
  properties: Map<string, string>;
}

/**
 * Parses a kernel uevent datagram. Returns undefined for anything else (udev's "libudev\0" messages,
 * truncated or malformed ones), mirroring device-monitor.c `device_monitor_receive_device`'s checks: the
 * header is `ACTION@DEVPATH` and contains "@/".
 */
export function parseKernelUevent(message: Buffer): KernelUevent | undefined {
  const firstNul = message.indexOf(0);
  const headerEnd = firstNul < 0 ? message.length : firstNul;
  const header = message.toString('utf8', 0, headerEnd);
  const at = header.indexOf('@/');
  if (at <= 0 || header.startsWith('libudev')) return undefined;
  const properties = new Map<string, string>();
  let pos = headerEnd + 1;
  while (pos < message.length) {
    let end = message.indexOf(0, pos);
    if (end < 0) end = message.length;
    const entry = message.toString('utf8', pos, end);
    const eq = entry.indexOf('=');
    if (eq > 0) properties.set(entry.slice(0, eq), entry.slice(eq + 1));
    pos = end + 1;
  }
  const action = properties.get('ACTION') ?? header.slice(0, at);
  const devpath = properties.get('DEVPATH') ?? header.slice(at + 1);
  return { action, devpath, properties };
}

/** USB device identity from a usb_device uevent (drivers/usb/core/usb.c `usb_dev_uevent` + devtmpfs). */
export interface UsbUeventIdentity {
  vid: string;
  pid: string;
  bcdDevice: string;
  bus: number;
  address: number;
  /** sysfs name of the device: the port path (`1-1.4`), or `usb1` for a root hub. */
  portPath: string;
  /** DEVNAME relative to /dev as the kernel sends it: `bus/usb/001/004`. */
  devName?: string;
  deviceClass?: string;
}

/**
 * Reads the identity of a `SUBSYSTEM=usb DEVTYPE=usb_device` uevent. The kernel's `usb_dev_uevent` adds
 * PRODUCT=%x/%x/%x (idVendor/idProduct/bcdDevice, hex without padding), TYPE=%d/%d/%d (class/subclass/
 * protocol, decimal), BUSNUM=%03d, DEVNUM=%03d; the device core adds DEVNAME, MAJOR, MINOR. Undefined for
 * interfaces, other subsystems, or a message missing the fields.
 */
export function usbIdentity(ev: KernelUevent): UsbUeventIdentity | undefined {
  const p = ev.properties;
  if (p.get('SUBSYSTEM') !== 'usb' || p.get('DEVTYPE') !== 'usb_device') return undefined;
  const product = /^([0-9a-fA-F]{1,4})\/([0-9a-fA-F]{1,4})\/([0-9a-fA-F]{1,4})$/.exec(p.get('PRODUCT') ?? '');
  const bus = Number.parseInt(p.get('BUSNUM') ?? '', 10);
  const address = Number.parseInt(p.get('DEVNUM') ?? '', 10);
  if (!product || !Number.isInteger(bus) || !Number.isInteger(address)) return undefined;
  const identity: UsbUeventIdentity = {
    vid: hex4(Number.parseInt(product[1]!, 16)),
    pid: hex4(Number.parseInt(product[2]!, 16)),
    bcdDevice: hex4(Number.parseInt(product[3]!, 16)),
    bus,
    address,
    portPath: basename(ev.devpath),
  };
  const devName = p.get('DEVNAME');
  if (devName) identity.devName = devName;
  const cls = /^(\d+)\//.exec(p.get('TYPE') ?? '');
  if (cls) identity.deviceClass = (Number(cls[1]) & 0xff).toString(16).padStart(2, '0');
  return identity;
}
