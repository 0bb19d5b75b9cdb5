// Our udev encoder against real systemd-udevd 252 broadcasts for a real USB device (QEMU usb-kbd, 0627:0001,
// hot-plugged over QMP into the lab VM's xHCI controller; test/fixtures/uevent/README.md). One plug and unplug:
// the kernel's add, change, add (interface), bind, remove (interface), unbind, remove, and udevd's re-broadcast
// of each, captured once with no rules and once with Debian's rules.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { stringHash32 } from '../../src/relay/murmur2.js';
import {
  decodeUdevMessage,
  encodeUdevMessage,
  type UsbAttributes,
  udevPropertiesFor,
} from '../../src/relay/udev-message.js';
import { type KernelUevent, parseKernelUevent } from '../../src/usb/kernel/uevent.js';

interface Captured {
  group: number;
  port: number;
  hex: string;
}

function load(name: string) {
  const all = (
    JSON.parse(readFileSync(new URL(`../fixtures/uevent/${name}`, import.meta.url), 'utf8')) as Captured[]
  ).map((c) => ({ ...c, buf: Buffer.from(c.hex, 'hex') }));
  const kernel = all.filter((c) => c.group === 1).map((c) => parseKernelUevent(c.buf)!);
  const udevd = all
    .filter((c) => c.group === 2)
    .map((c) => ({ buf: c.buf, ...decodeUdevMessage(c.buf, true)! }));
  const pairs = kernel.map((ev) => {
    const u = udevd.find((m) => m.properties.get('SEQNUM') === ev.properties.get('SEQNUM'));
    if (!u) throw new Error(`no udevd message for SEQNUM ${ev.properties.get('SEQNUM')}`);
    const label = `${ev.action} ${ev.properties.get('DEVTYPE')} #${ev.properties.get('SEQNUM')}`;
    return { label, ev, udevd: u };
  });
  return { all, kernel, udevd, pairs };
}

const norules = load('udevd-252-usb-kbd-norules.json');
const rules = load('udevd-252-usb-kbd.json');

/** The sysfs strings of QEMU's usb-kbd, as the relay reads them on add (udevd's ID_*_ENC say the same). */
const KBD: UsbAttributes = {
  manufacturer: 'QEMU',
  product: 'QEMU USB Keyboard',
  serial: '68284-0000:00:01.0-1',
};

function ours(ev: KernelUevent, usec: string, usb?: UsbAttributes) {
  return udevPropertiesFor(
    ev,
    usb ? { usecInitialized: BigInt(usec), usb } : { usecInitialized: BigInt(usec) },
  );
}
const withoutId = (props: Map<string, string>) => [...props].filter(([k]) => !k.startsWith('ID_'));

describe('the captured USB fixtures', () => {
  it.each([
    ['no rules', norules],
    ['Debian rules', rules],
  ])('%s: the kernel and udevd messages of one usb-kbd plug and unplug', (_name, f) => {
    expect(f.kernel.map((k) => `${k.action} ${k.properties.get('DEVTYPE')}`)).toEqual([
      'add usb_device',
      'change usb_device',
      'add usb_interface',
      'bind usb_device',
      'remove usb_interface',
      'unbind usb_device',
      'remove usb_device',
    ]);
    expect(f.udevd).toHaveLength(7);
    expect(f.all.filter((c) => c.group === 1).every((c) => c.port === 0)).toBe(true);
  });
});

describe('systemd-udevd 252 without rules: byte for byte', () => {
  // Without rules udevd adds nothing but UDEV_DATABASE_VERSION, the absolute DEVNAME and USEC_INITIALIZED;
  // our encoder adds the usb_id builtin's ID_* on usb_device (which Debian's rules would add): leave them out.
  it.each(norules.pairs.map((p) => [p.label, p] as const))('%s', (_label, p) => {
    const usec = p.udevd.properties.get('USEC_INITIALIZED')!;
    const mine = encodeUdevMessage(withoutId(ours(p.ev, usec)), { littleEndian: true });
    expect(mine.toString('hex')).toBe(p.udevd.buf.toString('hex'));
  });

  it('puts USEC_INITIALIZED after MAJOR/MINOR on add, before them on every other action', () => {
    for (const p of norules.pairs.filter((x) => x.ev.properties.has('MAJOR'))) {
      const keys = [...p.udevd.properties.keys()].slice(-3);
      expect(keys).toEqual(
        p.ev.action === 'add'
          ? ['MAJOR', 'MINOR', 'USEC_INITIALIZED']
          : ['USEC_INITIALIZED', 'MAJOR', 'MINOR'],
      );
      expect([...ours(p.ev, '1').keys()].filter((k) => !k.startsWith('ID_')).slice(-3)).toEqual(keys);
    }
  });
});

describe("systemd-udevd 252 with Debian's rules: what libudev, libusb and nusb check", () => {
  // libudev's BPF filter and receive checks read the header; libusb's udev backend reads ACTION, SUBSYSTEM,
  // DEVTYPE, DEVNAME (bus and address from it) and BUSNUM/DEVNUM; nusb reads ACTION, DEVPATH, SUBSYSTEM, DEVTYPE.
  const KEY = [
    'ACTION',
    'DEVPATH',
    'SUBSYSTEM',
    'DEVTYPE',
    'DEVNAME',
    'BUSNUM',
    'DEVNUM',
    'SEQNUM',
    'MAJOR',
    'MINOR',
  ];

  it.each(rules.pairs.map((p) => [p.label, p] as const))(
    '%s: same header (but length) and key fields',
    (_label, p) => {
      const usec = p.udevd.properties.get('USEC_INITIALIZED')!;
      const mine = encodeUdevMessage(ours(p.ev, usec, p.ev.action === 'add' ? KBD : undefined), {
        littleEndian: true,
      });
      // prefix, magic, header_size, properties_off: bytes 0..20; hashes and tag bloom: 24..40.
      expect(mine.subarray(0, 20).toString('hex')).toBe(p.udevd.buf.subarray(0, 20).toString('hex'));
      expect(mine.subarray(24, 40).toString('hex')).toBe(p.udevd.buf.subarray(24, 40).toString('hex'));
      const decoded = decodeUdevMessage(mine, true)!;
      for (const k of KEY) expect([k, decoded.properties.get(k)]).toEqual([k, p.udevd.properties.get(k)]);
      expect(p.udevd.subsystemHash).toBe(stringHash32('usb'));
      // Debian's rules set no TAGS for a keyboard's usb_device/usb_interface: the bloom is 0 in both.
      expect([p.udevd.tagBloomHi, p.udevd.tagBloomLo]).toEqual([0, 0]);
      // Without the ID_* part, ours is udevd's message in the same order.
      const theirsNoId = [...p.udevd.properties].filter(([k]) => !k.startsWith('ID_'));
      expect(withoutId(ours(p.ev, usec))).toEqual(theirsNoId);
    },
  );

  it("the usb_id values we add on add are udevd's", () => {
    const add = rules.pairs.find(
      (p) => p.ev.action === 'add' && p.ev.properties.get('DEVTYPE') === 'usb_device',
    )!;
    const mine = ours(add.ev, '1', KBD);
    for (const k of [...mine.keys()].filter((key) => key.startsWith('ID_')))
      expect([k, mine.get(k)]).toEqual([k, add.udevd.properties.get(k)]);
  });

  it('documents what udevd adds through rules that we do not (no listener of ours reads them)', () => {
    const adds = (p: (typeof rules.pairs)[number]) => {
      const mine = ours(p.ev, '1', p.ev.action === 'add' ? KBD : undefined);
      return [...p.udevd.properties.keys()].filter((k) => !mine.has(k));
    };
    const byLabel = Object.fromEntries(rules.pairs.map((p) => [p.label.replace(/ #\d+$/, ''), adds(p)]));
    expect(byLabel).toEqual({
      // usb_id (the _ENC forms, ID_USB_* copies, ID_USB_INTERFACES) and path_id (ID_PATH, ID_PATH_TAG)
      'add usb_device': [
        'ID_MODEL_ENC',
        'ID_VENDOR_ENC',
        'ID_USB_MODEL',
        'ID_USB_MODEL_ENC',
        'ID_USB_MODEL_ID',
        'ID_USB_SERIAL',
        'ID_USB_SERIAL_SHORT',
        'ID_USB_VENDOR',
        'ID_USB_VENDOR_ENC',
        'ID_USB_VENDOR_ID',
        'ID_USB_REVISION',
        'ID_USB_INTERFACES',
        'ID_PATH',
        'ID_PATH_TAG',
      ],
      // the change repeats the add's ID_* from udev's database (ours: only what PRODUCT gives, see below)
      'change usb_device': [
        'ID_MODEL_ENC',
        'ID_SERIAL_SHORT',
        'ID_VENDOR_ENC',
        'ID_USB_MODEL',
        'ID_USB_MODEL_ENC',
        'ID_USB_MODEL_ID',
        'ID_USB_SERIAL',
        'ID_USB_SERIAL_SHORT',
        'ID_USB_VENDOR',
        'ID_USB_VENDOR_ENC',
        'ID_USB_VENDOR_ID',
        'ID_USB_REVISION',
        'ID_PATH',
        'ID_PATH_TAG',
      ],
      'add usb_interface': ['ID_PATH', 'ID_PATH_TAG'],
      'bind usb_device': ['ID_PATH', 'ID_PATH_TAG'],
      'remove usb_interface': ['ID_PATH', 'ID_PATH_TAG'],
      'unbind usb_device': ['ID_PATH', 'ID_PATH_TAG'],
      'remove usb_device': ['ID_PATH', 'ID_PATH_TAG'],
    });
  });
});
