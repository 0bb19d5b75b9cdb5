import { describe, expect, it } from 'vitest';
import { murmurHash2, stringBloom64, stringHash32, tagBloom } from '../../src/relay/murmur2.js';

// Known answers computed by compiling the public-domain C reference (systemd src/basic/MurmurHash2.c, and
// string_bloom64 from src/libsystemd/sd-device/device-monitor.c) with gcc 12 on x86-64 (little-endian).
const KNOWN: Array<[string, number, bigint]> = [
  ['', 0x00000000, 0x0000000000000001n],
  ['a', 0x92685f5e, 0x2000000044000020n],
  ['ab', 0x1aa14063, 0x0000010800100002n],
  ['abc', 0x13577c9b, 0x0084000008200000n],
  ['usb', 0x0577c5e5, 0x1000002020800000n],
  ['usb_device', 0x27f8f50c, 0x4000000000109000n],
  ['usb_interface', 0xb1024765, 0x0000003020000001n],
  ['net', 0xa74d3cc8, 0x0008000000080100n],
  ['cpu', 0x4d1a71b3, 0x0008008000000040n],
  ['tty', 0x8afa90c8, 0x4000020000000108n],
  ['hidraw', 0xc2caf397, 0x0004800000804000n],
  ['systemd', 0xa75f972a, 0x0200040010800000n],
  ['uaccess', 0xe88ed0cc, 0x0000200800001008n],
  ['seat', 0x435b3e40, 0x0208000000400001n],
  ['libusb-hotplug-é', 0x57feca4a, 0x8000120000000400n],
];

describe('murmurHash2 (seed 0, little-endian host)', () => {
  it.each(KNOWN)('%j hashes like the C reference', (text, hash, bloom) => {
    expect(murmurHash2(text, 0, true)).toBe(hash);
    expect(stringBloom64(text)).toBe(bloom);
  });

  it('stringHash32 is the host-order hash (this suite runs on little-endian hosts)', () => {
    expect(stringHash32('usb')).toBe(0x0577c5e5);
  });

  it('takes raw bytes as well as strings', () => {
    expect(murmurHash2(Buffer.from('usb_device'), 0, true)).toBe(0x27f8f50c);
  });

  it('reads 4-byte blocks in host order: big-endian differs only when a block is mixed', () => {
    expect(murmurHash2('abc', 0, false)).toBe(0x13577c9b); // tail bytes only
    expect(murmurHash2('usb_device', 0, false)).not.toBe(0x27f8f50c);
  });

  it('the seed changes the hash', () => {
    expect(murmurHash2('usb', 1, true)).not.toBe(0x0577c5e5);
  });
});

describe('tagBloom', () => {
  it('is 0/0 without tags', () => {
    expect(tagBloom([])).toEqual({ hi: 0, lo: 0 });
  });

  it('ORs the blooms of all tags and splits into hi/lo words', () => {
    const bits = 0x0200040010800000n | 0x0000200800001008n; // systemd | uaccess
    expect(tagBloom(['systemd', 'uaccess'])).toEqual({
      hi: Number(bits >> 32n),
      lo: Number(bits & 0xffffffffn),
    });
  });
});
