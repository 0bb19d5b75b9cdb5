import { describe, expect, it } from 'vitest';
import { boundDevice, boundText, withoutControls } from '../../src/usb/bounds.js';
import type { UsbDevice } from '../../src/usb/types.js';

const base: UsbDevice = { key: 'port:1-1', vid: '1209', pid: '0001', bus: 1, address: 4, portPath: '1-1' };

describe('boundDevice', () => {
  it.each([
    [{ address: 200 }, /address 200 is not in 1\.\.127/],
    [{ address: 4294967296 }, /address 4294967296/],
    [{ address: 0 }, /address 0/],
    [{ bus: 1e20 }, /bus 100000000000000000000 is not in 1\.\.63/],
    [{ bus: 64 }, /bus 64/],
    [{ vid: '12AB' }, /vid "12AB" is not 4 hex digits/],
    [{ pid: '-31386' }, /pid/],
  ])('refuses %o', (over, reason) => {
    const r = boundDevice({ ...base, ...over } as UsbDevice);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toMatch(reason);
  });

  it('cuts strings to 126 characters, replaces control characters, leaves out malformed fields', () => {
    const r = boundDevice({
      ...base,
      manufacturer: 'M'.repeat(5 * 1024 * 1024),
      serial: `AB\u001b]0;PWNED\u0007${'S'.repeat(300)}`,
      product: 'Evil\u001b[31mred\u009b',
      speed: '480\u001b[2J',
      bcdDevice: 'zz',
      deviceClass: 'ff',
      portPath: '1-1.2.3',
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.device.manufacturer).toHaveLength(126);
    expect([...(r.device.serial ?? '')]).toHaveLength(126);
    expect(r.device.serial?.startsWith('AB\uFFFD]0;PWNED\uFFFD')).toBe(true);
    expect(r.device.product).toBe('Evil\uFFFD[31mred\uFFFD');
    expect(r.device.speed).toBeUndefined();
    expect(r.device.bcdDevice).toBeUndefined();
    expect(r.device).toMatchObject({ deviceClass: 'ff', portPath: '1-1.2.3' });
    // The key follows the bounded serial.
    expect(r.device.key).toBe(`serial:${r.device.serial}`);
    expect(r.cuts).toEqual([
      'serial: control characters replaced',
      'serial: cut from 312 to 126 characters',
      'manufacturer: cut from 5242880 to 126 characters',
      'product: control characters replaced',
      'speed: "480\uFFFD[2J" is not valid, left out',
      'bcdDevice: "zz" is not valid, left out',
    ]);
  });

  it('leaves a sane device untouched and accepts a removal with bus and address only', () => {
    expect(boundDevice(base)).toEqual({ ok: true, device: base, cuts: [] });
    expect(boundDevice({ bus: 2, address: 9 }, true)).toMatchObject({ ok: true, cuts: [] });
  });
});

describe('text helpers', () => {
  it('never splits a surrogate pair and replaces C0, DEL and C1', () => {
    expect(boundText('😀😀😀', 2).text).toBe('😀😀');
    expect(withoutControls('a\u0000b\u007fc\u0085d\u001be')).toBe('a\uFFFDb\uFFFDc\uFFFDd\uFFFDe');
  });
});
