import { describe, expect, it } from 'vitest';
import { parseDeviceDescriptor } from '../../src/usb/descriptor.js';
import { encodeDescriptors } from '../fakes/usb-tree.js';

describe('parseDeviceDescriptor', () => {
  it('reads idVendor/idProduct little-endian and unsigned (0x8566 is not -31386)', () => {
    const r = parseDeviceDescriptor(
      encodeDescriptors({ vid: 0x1209, pid: 0x8566, bcdDevice: 0x0203, deviceClass: 0xef }),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.descriptor).toMatchObject({
      vid: '1209',
      pid: '8566',
      bcdDevice: '0203',
      bcdUSB: '0200',
      deviceClass: 'ef',
      maxPacketSize0: 64,
      numConfigurations: 1,
      configurations: [1],
    });
  });

  it('parses a bare 18-byte descriptor with no configuration after it', () => {
    const r = parseDeviceDescriptor(encodeDescriptors({ vid: 0xffff, pid: 0 }).subarray(0, 18));
    expect(r).toMatchObject({ ok: true, descriptor: { vid: 'ffff', pid: '0000', configurations: [] } });
  });

  it('reports an empty node', () => {
    expect(parseDeviceDescriptor(Buffer.alloc(0))).toMatchObject({ ok: false, failure: 'empty' });
  });

  it('reports a truncated descriptor with its length', () => {
    const r = parseDeviceDescriptor(encodeDescriptors({ vid: 1, pid: 2 }).subarray(0, 11));
    expect(r).toMatchObject({ ok: false, failure: 'truncated' });
    expect(!r.ok && r.reason).toContain('11 bytes');
  });

  it('rejects garbage: wrong bLength or wrong descriptor type', () => {
    expect(parseDeviceDescriptor(Buffer.from('hello, this is not a usb node\n'))).toMatchObject({
      ok: false,
      failure: 'bad-length',
    });
    const wrongType = encodeDescriptors({ vid: 1, pid: 2 });
    wrongType[1] = 2;
    expect(parseDeviceDescriptor(wrongType)).toMatchObject({ ok: false, failure: 'bad-type' });
  });

  it('stops at a malformed configuration descriptor without failing the device', () => {
    const data = Buffer.concat([
      encodeDescriptors({ vid: 1, pid: 2 }).subarray(0, 18),
      Buffer.from([9, 2, 3, 0]),
    ]);
    expect(parseDeviceDescriptor(data)).toMatchObject({ ok: true, descriptor: { configurations: [] } });
  });

  it('never throws on random bytes', () => {
    for (let i = 0; i < 500; i++) {
      const len = Math.floor(Math.random() * 64);
      const buf = Buffer.from(Array.from({ length: len }, () => Math.floor(Math.random() * 256)));
      if (len > 0 && Math.random() < 0.5) buf[0] = 18;
      if (len > 1 && Math.random() < 0.5) buf[1] = 1;
      expect(() => parseDeviceDescriptor(buf)).not.toThrow();
    }
  });
});
