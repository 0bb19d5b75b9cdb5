import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { stringHash32 } from '../../src/relay/murmur2.js';
import {
  decodeUdevMessage,
  encodeUdevMessage,
  isUdevMessage,
  udevPropertiesFor,
  udevSanitize,
} from '../../src/relay/udev-message.js';
import { parseKernelUevent } from '../../src/usb/kernel/uevent.js';
import { usbDeviceUevent } from './usb-uevents.js';

interface Captured {
  group: number;
  port: number;
  hex: string;
}
const captured = (
  JSON.parse(
    readFileSync(new URL('../fixtures/uevent/udevd-252-net-cpu.json', import.meta.url), 'utf8'),
  ) as Captured[]
).map((c) => ({ ...c, buf: Buffer.from(c.hex, 'hex') }));
const kernel = captured.filter((c) => c.group === 1);
const udevd = captured.filter((c) => c.group === 2);

/** The udevd message that re-broadcasts the kernel message with the same SEQNUM. */
function udevdFor(kernelBuf: Buffer) {
  const seq = parseKernelUevent(kernelBuf)!.properties.get('SEQNUM');
  const match = udevd.find((u) => decodeUdevMessage(u.buf, true)?.properties.get('SEQNUM') === seq);
  if (!match) throw new Error(`no udevd message for SEQNUM ${seq}`);
  return match.buf;
}

describe('the captured fixture', () => {
  it('holds kernel and udevd messages for the same three events', () => {
    expect(kernel).toHaveLength(3);
    expect(udevd).toHaveLength(3);
    expect(kernel.every((k) => k.port === 0)).toBe(true);
    expect(udevd.every((u) => u.port !== 0 && isUdevMessage(u.buf))).toBe(true);
  });
});

describe('encodeUdevMessage against real systemd-udevd 252 broadcasts', () => {
  it.each(kernel.map((k) => [parseKernelUevent(k.buf)!.devpath, parseKernelUevent(k.buf)!.action, k.buf]))(
    '%s %s: same bytes as udevd from the kernel message plus USEC_INITIALIZED',
    (_devpath, _action, kernelBuf) => {
      const real = udevdFor(kernelBuf as Buffer);
      const usec = decodeUdevMessage(real, true)!.properties.get('USEC_INITIALIZED')!;
      const ev = parseKernelUevent(kernelBuf as Buffer)!;
      const ours = encodeUdevMessage(udevPropertiesFor(ev, { usecInitialized: BigInt(usec) }), {
        littleEndian: true,
      });
      expect(ours.toString('hex')).toBe(real.toString('hex'));
    },
  );
});

describe('decodeUdevMessage', () => {
  it('reads a real udevd header: sizes in host order, hashes in network order', () => {
    const real = udevdFor(kernel[0]!.buf);
    const decoded = decodeUdevMessage(real, true)!;
    expect(decoded.headerSize).toBe(40);
    expect(decoded.subsystemHash).toBe(stringHash32('net'));
    expect(decoded.devtypeHash).toBe(0);
    expect(decoded.tagBloomHi).toBe(0);
    expect(decoded.tagBloomLo).toBe(0);
    expect(real.readUInt32LE(20)).toBe(real.length - 40);
    expect(decoded.properties.get('SUBSYSTEM')).toBe('net');
    expect([...decoded.properties.keys()][0]).toBe('UDEV_DATABASE_VERSION');
  });

  it('rejects kernel messages, a wrong magic and a properties offset past the end', () => {
    expect(decodeUdevMessage(kernel[0]!.buf)).toBeUndefined();
    const real = Buffer.from(udevdFor(kernel[0]!.buf));
    const badMagic = Buffer.from(real);
    badMagic.writeUInt32BE(0xcafefeed, 8);
    expect(decodeUdevMessage(badMagic, true)).toBeUndefined();
    const badOffset = Buffer.from(real);
    badOffset.writeUInt32LE(real.length, 16);
    expect(decodeUdevMessage(badOffset, true)).toBeUndefined();
    expect(decodeUdevMessage(real.subarray(0, 31), true)).toBeUndefined();
  });
});

describe('udevPropertiesFor a USB device', () => {
  const ev = parseKernelUevent(usbDeviceUevent('add'))!;
  const props = udevPropertiesFor(ev, {
    usecInitialized: 123456789n,
    usb: { manufacturer: ' Acme  Corp ', product: 'Widget/2', serial: 'ABC 123' },
  });

  it('makes DEVNAME absolute in place and keeps the kernel fields libusb reads', () => {
    expect(props.get('DEVNAME')).toBe('/dev/bus/usb/001/004');
    // sd-device order: DEVNAME in place, MAJOR/MINOR after the kernel's other fields (device_set_devnum).
    expect([...props.keys()].slice(0, 14)).toEqual([
      'UDEV_DATABASE_VERSION',
      'ACTION',
      'DEVPATH',
      'SUBSYSTEM',
      'DEVNAME',
      'DEVTYPE',
      'PRODUCT',
      'TYPE',
      'BUSNUM',
      'DEVNUM',
      'SEQNUM',
      'MAJOR',
      'MINOR',
      'USEC_INITIALIZED',
    ]);
    expect(props.get('BUSNUM')).toBe('001');
    expect(props.get('SEQNUM')).toBe('4242');
    expect(props.get('USEC_INITIALIZED')).toBe('123456789');
  });

  it('adds the usb_id builtin properties that need no descriptor reads', () => {
    expect(Object.fromEntries([...props].filter(([k]) => k.startsWith('ID_')))).toEqual({
      ID_VENDOR: 'Acme_Corp',
      ID_VENDOR_ID: '1209',
      ID_MODEL: 'Widget_2',
      ID_MODEL_ID: '0001',
      ID_REVISION: '0100',
      ID_SERIAL: 'Acme_Corp_Widget_2_ABC_123',
      ID_SERIAL_SHORT: 'ABC_123',
      ID_BUS: 'usb',
    });
  });

  it('falls back to the IDs when the device has no strings, like usb_id', () => {
    const bare = udevPropertiesFor(ev, { usecInitialized: 1 });
    expect(bare.get('ID_VENDOR')).toBe('1209');
    expect(bare.get('ID_MODEL')).toBe('0001');
    expect(bare.get('ID_SERIAL')).toBe('1209_0001');
    expect(bare.has('ID_SERIAL_SHORT')).toBe(false);
  });

  it('encodes subsystem and devtype hashes libusb/libudev filter on (usb / usb_device)', () => {
    const msg = encodeUdevMessage(props, { littleEndian: true });
    expect(msg.readUInt32BE(24)).toBe(0x0577c5e5);
    expect(msg.readUInt32BE(28)).toBe(0x27f8f50c);
    const back = decodeUdevMessage(msg, true)!;
    expect([...back.properties]).toEqual([...props]);
  });

  it('puts tags into the bloom filter words', () => {
    const msg = encodeUdevMessage(props, { tags: ['uaccess'], littleEndian: true });
    expect(msg.readUInt32BE(32)).toBe(0x00002008);
    expect(msg.readUInt32BE(36)).toBe(0x00001008);
  });

  it('writes host-order sizes big-endian on a big-endian host', () => {
    const msg = encodeUdevMessage(props, { littleEndian: false });
    expect(msg.readUInt32BE(12)).toBe(40);
    expect(msg.readUInt32BE(20)).toBe(msg.length - 40);
  });

  it('refuses properties without SUBSYSTEM', () => {
    expect(() => encodeUdevMessage([['ACTION', 'add']])).toThrow(/SUBSYSTEM/);
  });
});

describe('udevSanitize (udev_replace_whitespace + udev_replace_chars)', () => {
  it.each([
    ['  Logitech  USB Receiver ', 'Logitech_USB_Receiver'],
    ['a/b\\c"d', 'a_b_c_d'],
    ['Größe #1+2', 'Größe_#1+2'],
  ])('%j -> %j', (input, out) => {
    expect(udevSanitize(input)).toBe(out);
  });
});
