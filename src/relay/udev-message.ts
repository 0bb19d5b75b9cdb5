/**
 * udev's netlink message format (what systemd-udevd broadcasts on NETLINK_KOBJECT_UEVENT group 2), after
 * systemd src/libsystemd/sd-device/device-monitor.c (`monitor_netlink_header`, `device_monitor_send_device`,
 * `device_monitor_receive_device`; libudev's older `udev_monitor_netlink_header` is the same layout):
 *
 *   off  size  field
 *     0     8  prefix "libudev\0"           distinguishes udev from kernel messages
 *     8     4  magic 0xfeedcafe             network byte order (libudev's BPF filter loads it as a BE word)
 *    12     4  header_size = 40             host byte order
 *    16     4  properties_off = 40          host byte order
 *    20     4  properties_len               host byte order
 *    24     4  filter_subsystem_hash        network byte order: MurmurHash2(SUBSYSTEM, seed 0)
 *    28     4  filter_devtype_hash          network byte order: MurmurHash2(DEVTYPE) or 0 without DEVTYPE
 *    32     4  filter_tag_bloom_hi          network byte order: string_bloom64 of all tags, high word
 *    36     4  filter_tag_bloom_lo          network byte order: low word
 *    40     …  properties "KEY=VALUE\0" …  (device_get_properties_nulstr)
 *
 * Receivers (libudev, sd-device, libusb's udev backend through libudev, nusb) drop messages whose magic is
 * wrong or whose properties_off + 32 exceeds the datagram, and then require ACTION, DEVPATH, SUBSYSTEM and
 * a non-zero SEQNUM in the properties (sd-device `device_verify`).
 */
import { endianness } from 'node:os';
import type { KernelUevent } from '../usb/kernel/uevent.js';
import { stringHash32, tagBloom } from './murmur2.js';

export const UDEV_PREFIX = 'libudev\0';
export const UDEV_MONITOR_MAGIC = 0xfeedcafe;
export const UDEV_HEADER_SIZE = 40;

export interface EncodeOptions {
  /** Tags (udev's TAGS) to put in the bloom filter; none by default. */
  tags?: Iterable<string>;
  /** Byte order of header_size/properties_off/properties_len: this host's by default (tests inject it). */
  littleEndian?: boolean;
}

/** Encodes ordered properties into one udev netlink datagram. SUBSYSTEM must be among them. */
export function encodeUdevMessage(
  properties: ReadonlyMap<string, string> | Iterable<readonly [string, string]>,
  options: EncodeOptions = {},
): Buffer {
  const entries = [...(properties instanceof Map ? properties.entries() : properties)];
  const props = new Map(entries);
  const subsystem = props.get('SUBSYSTEM');
  if (!subsystem) throw new TypeError('a udev message needs a SUBSYSTEM property');
  const body = Buffer.from(entries.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
  const header = Buffer.alloc(UDEV_HEADER_SIZE);
  const le = options.littleEndian ?? endianness() === 'LE';
  const host = (value: number, offset: number) =>
    le ? header.writeUInt32LE(value, offset) : header.writeUInt32BE(value, offset);
  header.write(UDEV_PREFIX, 0, 'latin1');
  header.writeUInt32BE(UDEV_MONITOR_MAGIC, 8);
  host(UDEV_HEADER_SIZE, 12);
  host(UDEV_HEADER_SIZE, 16);
  host(body.length, 20);
  header.writeUInt32BE(stringHash32(subsystem), 24);
  const devtype = props.get('DEVTYPE');
  if (devtype !== undefined) header.writeUInt32BE(stringHash32(devtype), 28);
  const bloom = tagBloom(options.tags ?? []);
  header.writeUInt32BE(bloom.hi, 32);
  header.writeUInt32BE(bloom.lo, 36);
  return Buffer.concat([header, body]);
}

export interface DecodedUdevMessage {
  headerSize: number;
  subsystemHash: number;
  devtypeHash: number;
  tagBloomHi: number;
  tagBloomLo: number;
  properties: Map<string, string>;
}

/** True when a datagram starts with udev's "libudev\0" prefix (whatever its magic). */
export function isUdevMessage(message: Buffer): boolean {
  return message.length >= 8 && message.toString('latin1', 0, 8) === UDEV_PREFIX;
}

/**
 * Decodes a udev datagram with the receiver's checks (device_monitor_receive_device): at least 32 bytes,
 * "libudev" prefix, magic in network order, properties_off + 32 within the datagram. Undefined otherwise.
 */
export function decodeUdevMessage(
  message: Buffer,
  littleEndian = endianness() === 'LE',
): DecodedUdevMessage | undefined {
  if (message.length < 32 || !isUdevMessage(message)) return undefined;
  if (message.readUInt32BE(8) !== UDEV_MONITOR_MAGIC) return undefined;
  const host = (offset: number) =>
    littleEndian ? message.readUInt32LE(offset) : message.readUInt32BE(offset);
  const headerSize = host(12);
  const off = host(16);
  if (off + 32 > message.length) return undefined;
  const properties = new Map<string, string>();
  for (const entry of message.toString('utf8', off).split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) properties.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return {
    headerSize,
    subsystemHash: message.readUInt32BE(24),
    devtypeHash: message.readUInt32BE(28),
    tagBloomHi: message.readUInt32BE(32),
    tagBloomLo: message.readUInt32BE(36),
    properties,
  };
}

/** sysfs facts of a USB device that udev's usb_id builtin turns into ID_* properties. */
export interface UsbAttributes {
  manufacturer?: string;
  product?: string;
  serial?: string;
}

export interface UdevPropertiesOptions {
  /** CLOCK_MONOTONIC µs when udev "initialized" the device (for remove: the value from the add). */
  usecInitialized: bigint | number;
  /** Prefix for relative DEVNAME; udevd uses "/dev" (sd-device `device_set_devname`). */
  devPrefix?: string;
  /** Strings for ID_VENDOR/ID_MODEL/ID_SERIAL of usb_device events (read from sysfs on add). */
  usb?: UsbAttributes;
}

/**
 * What systemd-udevd 252 broadcasts for a kernel uevent when no rule changes it (captured byte for byte in
 * test/fixtures/uevent): `UDEV_DATABASE_VERSION=1` first, then the kernel's properties in the kernel's
 * order with DEVNAME made absolute and MAJOR/MINOR moved last, and `USEC_INITIALIZED` after them on add,
 * before them on other actions. For `usb_device` events we also add the cheap
 * part of what the usb_id builtin would (IMPORT{builtin}="usb_id" in 50-udev-default.rules) so tools that
 * read ID_VENDOR_ID/ID_MODEL_ID/ID_SERIAL_SHORT keep working.
 */
export function udevPropertiesFor(ev: KernelUevent, options: UdevPropertiesOptions): Map<string, string> {
  const devPrefix = options.devPrefix ?? '/dev';
  // sd-device `device_update_properties_bufs` writes UDEV_DATABASE_VERSION first.
  const out = new Map<string, string>([['UDEV_DATABASE_VERSION', '1']]);
  let major: string | undefined;
  let minor: string | undefined;
  for (const [key, raw] of ev.properties) {
    // `device_new_from_nulstr`: "netlink messages for some devices contain an unwanted newline at the end
    // of value. Let's drop the newline and remaining characters after the newline." (cpu MODALIAS does.)
    const nl = raw.indexOf('\n');
    const value = nl < 0 ? raw : raw.slice(0, nl);
    // `device_append` holds MAJOR/MINOR back and `device_set_devnum` adds them after all other properties.
    if (key === 'MAJOR') major = value;
    else if (key === 'MINOR') minor = value;
    // `device_set_devname` prefixes "/dev/" to a relative DEVNAME.
    else out.set(key, key === 'DEVNAME' && !value.startsWith('/') ? `${devPrefix}/${value}` : value);
  }
  // Captured from systemd-udevd 252 for a USB device (test/fixtures/uevent/udevd-252-usb-kbd*.json): on add,
  // USEC_INITIALIZED follows MAJOR/MINOR; on every other action (change, bind, unbind, remove) it precedes them.
  const usecFirst = ev.action !== 'add';
  if (usecFirst) out.set('USEC_INITIALIZED', String(options.usecInitialized));
  if (major !== undefined) {
    out.set('MAJOR', major);
    if (minor !== undefined) out.set('MINOR', minor);
  }
  if (!usecFirst) out.set('USEC_INITIALIZED', String(options.usecInitialized));
  if (ev.properties.get('SUBSYSTEM') === 'usb' && ev.properties.get('DEVTYPE') === 'usb_device') {
    for (const [k, v] of usbIdProperties(ev, options.usb ?? {})) out.set(k, v);
  }
  return out;
}

/**
 * udev's util `udev_replace_whitespace` + `udev_replace_chars(str, NULL)`: trim, collapse whitespace runs to
 * one '_', and replace anything but alphanumerics, "#+-.:=@_" and non-ASCII (valid UTF-8) with '_'.
 */
export function udevSanitize(text: string): string {
  return text
    .trim()
    .replace(/\s+/g, '_')
    .replace(/[^\p{L}\p{N}#+\-.:=@_]/gu, '_');
}

/** The part of udev-builtin-usb_id.c's output for a usb_device that needs only PRODUCT and sysfs strings. */
function usbIdProperties(ev: KernelUevent, attrs: UsbAttributes): Array<[string, string]> {
  const m = /^([0-9a-fA-F]{1,4})\/([0-9a-fA-F]{1,4})\/([0-9a-fA-F]{1,4})$/.exec(
    ev.properties.get('PRODUCT') ?? '',
  );
  if (!m) return [];
  const pad = (h: string) => h.toLowerCase().padStart(4, '0');
  const vid = pad(m[1]!);
  const pid = pad(m[2]!);
  // usb_id: vendor_str falls back to the ID when the device has no manufacturer string; same for model.
  const vendor = attrs.manufacturer ? udevSanitize(attrs.manufacturer) : vid;
  const model = attrs.product ? udevSanitize(attrs.product) : pid;
  const serial = attrs.serial ? udevSanitize(attrs.serial) : undefined;
  const props: Array<[string, string]> = [
    ['ID_VENDOR', vendor],
    ['ID_VENDOR_ID', vid],
    ['ID_MODEL', model],
    ['ID_MODEL_ID', pid],
    ['ID_REVISION', pad(m[3]!)],
    ['ID_SERIAL', serial ? `${vendor}_${model}_${serial}` : `${vendor}_${model}`],
  ];
  if (serial) props.push(['ID_SERIAL_SHORT', serial]);
  props.push(['ID_BUS', 'usb']);
  return props;
}
