/**
 * What a USB device's values can be, checked before anything leaves the agent (issue 12: a fake or broken
 * sysfs had devnum 200 and 4294967296, busnum 1e20, a 5 MB manufacturer, a 2 MB serial and ANSI escapes,
 * all published raw: a 9.5 MB `devices` payload). The limits are the kernel's and the USB spec's, and
 * docs/schemas/common.schema.json says the same:
 * - bus 1..63: usb_register_bus() takes its number from an IDR in [1, USB_MAXBUS = 64) (drivers/usb/core/hcd.c);
 * - address (devnum) 1..127: USB 2.0 §9.4.6, seven address bits, 0 is the default address;
 * - strings (serial, manufacturer, product): a string descriptor's bLength is one byte, so at most 126
 *   UTF-16 code units (USB 2.0 §9.6.7); control characters are replaced by U+FFFD so no terminal or log
 *   reader ever gets an escape sequence from a device;
 * - port path `B-P[.P]...`: at most 7 tiers (§4.1.1); speed as sysfs prints it; hex fields as hex.
 * A device whose identity (bus, address, vid, pid) is out of range is dropped; other fields are cut or
 * left out. Every change is described so the caller can say once what was cut.
 */
import type { UsbDevice } from './types.js';
import { deviceKey } from './types.js';

export const MAX_BUS = 63;
export const MAX_ADDRESS = 127;
export const MAX_USB_STRING = 126;
export const MAX_PATH_CHARS = 4096;

// C0 controls, DEL and C1 controls (ESC, CSI, OSC start, BEL, backspace, carriage return...).
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point (terminal injection).
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
const HEX4 = /^[0-9a-f]{4}$/;
const HEX2 = /^[0-9a-f]{2}$/;
const PORT_PATH = /^[0-9]{1,2}-[0-9]{1,3}(\.[0-9]{1,3}){0,6}$/;
const SPEED = /^([0-9]{1,6}(\.[0-9]{1,3})?(-[0-9]{1,6}(\.[0-9]{1,3})?)?|unknown)$/;

/** `text` with every control character replaced by U+FFFD. */
export function withoutControls(text: string, replacement = '\uFFFD'): string {
  return text.replace(CONTROL, replacement);
}

export function hasControls(text: string): boolean {
  CONTROL.lastIndex = 0;
  const found = CONTROL.test(text);
  CONTROL.lastIndex = 0;
  return found;
}

/** At most `max` code points (never splitting a surrogate pair), control characters replaced. */
export function boundText(text: string, max: number): { text: string; cut: string[] } {
  const cut: string[] = [];
  let out = text;
  if (hasControls(out)) {
    out = withoutControls(out);
    cut.push('control characters replaced');
  }
  const points = [...out];
  if (points.length > max) {
    out = points.slice(0, max).join('');
    cut.push(`cut from ${points.length} to ${max} characters`);
  }
  return { text: out, cut };
}

export type DeviceCheck = { ok: true; device: UsbDevice; cuts: string[] } | { ok: false; reason: string };

type Partialish = Pick<UsbDevice, 'bus' | 'address'> & Partial<UsbDevice>;

function inRange(n: unknown, min: number, max: number): boolean {
  return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max;
}

/**
 * Checks and bounds one device. `partial` is for removals, which may carry only bus and address. The key
 * is recomputed from the bounded values (a cut serial gives a cut key).
 */
export function boundDevice<D extends Partialish>(device: D, partial = false): DeviceCheck {
  if (!inRange(device.bus, 1, MAX_BUS))
    return { ok: false, reason: `bus ${String(device.bus)} is not in 1..${MAX_BUS}` };
  if (!inRange(device.address, 1, MAX_ADDRESS))
    return { ok: false, reason: `address ${String(device.address)} is not in 1..${MAX_ADDRESS}` };
  for (const id of ['vid', 'pid'] as const) {
    const v = device[id];
    if (v === undefined && partial) continue;
    if (typeof v !== 'string' || !HEX4.test(v))
      return { ok: false, reason: `${id} ${JSON.stringify(v)} is not 4 hex digits` };
  }
  const out: Record<string, unknown> = { ...device };
  const cuts: string[] = [];
  for (const name of ['serial', 'manufacturer', 'product'] as const) {
    const v = device[name];
    if (v === undefined) continue;
    const b = boundText(String(v), MAX_USB_STRING);
    if (b.text === '') delete out[name];
    else out[name] = b.text;
    for (const c of b.cut) cuts.push(`${name}: ${c}`);
  }
  const pattern = (name: 'portPath' | 'speed' | 'bcdDevice' | 'deviceClass', re: RegExp) => {
    const v = device[name];
    if (v === undefined) return;
    if (typeof v === 'string' && re.test(v)) return;
    delete out[name];
    cuts.push(`${name}: ${JSON.stringify(withoutControls(String(v)).slice(0, 40))} is not valid, left out`);
  };
  pattern('portPath', PORT_PATH);
  pattern('speed', SPEED);
  pattern('bcdDevice', HEX4);
  pattern('deviceClass', HEX2);
  if (device.devNode !== undefined) {
    const b = boundText(String(device.devNode), MAX_PATH_CHARS);
    out.devNode = b.text;
    for (const c of b.cut) cuts.push(`devNode: ${c}`);
  }
  if (!partial || device.key !== undefined) out.key = deviceKey(out as unknown as UsbDevice);
  return { ok: true, device: out as unknown as UsbDevice, cuts };
}
