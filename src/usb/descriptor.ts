/**
 * Parses what a usbfs node (`/dev/bus/usb/BBB/DDD`) returns on read(): the 18-byte standard device
 * descriptor (USB 2.0 spec §9.6.1, Table 9-8) followed by the configuration descriptors. Multi-byte
 * fields are little-endian and unsigned (§8.1) — the original tool printed PID 0x8566 as -31386.
 *
 * Never throws: the node may be empty or short while the kernel or udev is still setting it up, or hold
 * garbage on a broken fake; callers get a typed failure and decide whether to retry.
 */

import { hex4 } from './ids.js';
import { deviceKey, type UsbDevice } from './types.js';

export const DEVICE_DESCRIPTOR_LENGTH = 18;
const DESCRIPTOR_TYPE_DEVICE = 1;
const DESCRIPTOR_TYPE_CONFIGURATION = 2;

export interface DeviceDescriptor {
  /** bcdUSB as 4-digit hex, e.g. '0200'. */
  bcdUSB: string;
  /** 2-digit hex. */
  deviceClass: string;
  deviceSubClass: string;
  deviceProtocol: string;
  maxPacketSize0: number;
  /** 4-digit lowercase hex. */
  vid: string;
  pid: string;
  bcdDevice: string;
  /** String descriptor indexes (0 = none). Reading the strings needs a control transfer, not usbfs read. */
  iManufacturer: number;
  iProduct: number;
  iSerialNumber: number;
  numConfigurations: number;
  /** Configuration descriptors that followed and were well-formed (bConfigurationValue each). */
  configurations: number[];
}

export type DescriptorFailure = 'empty' | 'truncated' | 'bad-length' | 'bad-type';

export type DescriptorResult =
  | { ok: true; descriptor: DeviceDescriptor }
  | { ok: false; failure: DescriptorFailure; reason: string };

const hex2 = (n: number) => n.toString(16).padStart(2, '0');

export function parseDeviceDescriptor(data: Uint8Array): DescriptorResult {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length === 0) return { ok: false, failure: 'empty', reason: 'the node is empty' };
  if (buf.length < DEVICE_DESCRIPTOR_LENGTH) {
    return {
      ok: false,
      failure: 'truncated',
      reason: `${buf.length} bytes; a device descriptor has ${DEVICE_DESCRIPTOR_LENGTH}`,
    };
  }
  const bLength = buf.readUInt8(0);
  const bDescriptorType = buf.readUInt8(1);
  if (bLength !== DEVICE_DESCRIPTOR_LENGTH) {
    return { ok: false, failure: 'bad-length', reason: `bLength is ${bLength}, expected 18` };
  }
  if (bDescriptorType !== DESCRIPTOR_TYPE_DEVICE) {
    return { ok: false, failure: 'bad-type', reason: `bDescriptorType is ${bDescriptorType}, expected 1` };
  }
  return {
    ok: true,
    descriptor: {
      bcdUSB: hex4(buf.readUInt16LE(2)),
      deviceClass: hex2(buf.readUInt8(4)),
      deviceSubClass: hex2(buf.readUInt8(5)),
      deviceProtocol: hex2(buf.readUInt8(6)),
      maxPacketSize0: buf.readUInt8(7),
      vid: hex4(buf.readUInt16LE(8)),
      pid: hex4(buf.readUInt16LE(10)),
      bcdDevice: hex4(buf.readUInt16LE(12)),
      iManufacturer: buf.readUInt8(14),
      iProduct: buf.readUInt8(15),
      iSerialNumber: buf.readUInt8(16),
      numConfigurations: buf.readUInt8(17),
      configurations: parseConfigurations(buf.subarray(DEVICE_DESCRIPTOR_LENGTH)),
    },
  };
}

/**
 * Walks the configuration descriptors (§9.6.3): each starts with bLength=9, type 2, wTotalLength covering
 * its interfaces and endpoints. Stops at the first malformed one: the device identity does not depend on it.
 */
function parseConfigurations(rest: Buffer): number[] {
  const values: number[] = [];
  let offset = 0;
  while (offset + 9 <= rest.length) {
    if (rest.readUInt8(offset) !== 9 || rest.readUInt8(offset + 1) !== DESCRIPTOR_TYPE_CONFIGURATION) break;
    const total = rest.readUInt16LE(offset + 2);
    if (total < 9) break;
    values.push(rest.readUInt8(offset + 5));
    offset += total;
  }
  return values;
}

/** The identity a usbfs node alone gives (no strings, no port path: those live in sysfs). */
export function deviceFromDescriptor(
  d: DeviceDescriptor,
  where: { bus: number; address: number; devNode?: string },
): UsbDevice {
  const device: UsbDevice = {
    key: '',
    vid: d.vid,
    pid: d.pid,
    bus: where.bus,
    address: where.address,
    bcdDevice: d.bcdDevice,
    deviceClass: d.deviceClass,
    ...(where.devNode ? { devNode: where.devNode } : {}),
  };
  device.key = deviceKey(device);
  return device;
}
