/**
 * The last check before a payload is built (issue 12): every device, error and free-text field the agent
 * publishes is bounded to what docs/schemas/common.schema.json allows. The watcher has bounded devices
 * already (src/usb/value-notes.ts) and said what it cut; this guard is what makes "nothing unchecked is
 * published" true for every path (target snapshots, events, info), not just the one that comes first.
 */
import { ErrorCodes, ReplugError } from '../errors.js';
import type { ErrorInfo } from '../events.js';
import { boundDevice, boundText, withoutControls } from '../usb/bounds.js';
import type { UsbDevice } from '../usb/types.js';

export const MAX_TEXT = 1024;
export const MAX_SHORT_TEXT = 256;
const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/** Free text: control characters (newlines included) become spaces, then cut. */
export function text(value: string, max = MAX_TEXT): string {
  return boundText(withoutControls(value, ' '), max).text;
}

export function errorInfo(e: ErrorInfo): ErrorInfo {
  return { code: ERROR_CODE.test(e.code) ? e.code : ErrorCodes.DRIVER_FAILED, message: text(e.message) };
}

/** A device as published; throws when its identity is out of range (nothing upstream lets one through). */
export function device<D extends Pick<UsbDevice, 'bus' | 'address'> & Partial<UsbDevice>>(
  d: D,
  partial = false,
): D {
  const checked = boundDevice(d, partial);
  if (!checked.ok) {
    throw new ReplugError(ErrorCodes.INTERNAL, `device not published: ${checked.reason}`);
  }
  return checked.device as unknown as D;
}

/** The devices that can be published (the others were refused, and said so, by the watcher). */
export function devices(list: readonly UsbDevice[]): UsbDevice[] {
  return list.flatMap((d) => {
    const checked = boundDevice(d);
    return checked.ok ? [checked.device] : [];
  });
}

/** Event fields: device, error, reason, and a source status's reason. */
export function eventFields<T extends object>(type: string, data: T): T {
  const out = { ...data } as Record<string, unknown>;
  if (out.device && typeof out.device === 'object')
    out.device = device(out.device as UsbDevice, type === 'device.removed');
  if (out.error && typeof out.error === 'object') out.error = errorInfo(out.error as ErrorInfo);
  if (typeof out.reason === 'string') out.reason = text(out.reason);
  const status = out.status as { reason?: unknown; code?: unknown } | undefined;
  if (status && typeof status === 'object' && typeof status.reason === 'string') {
    out.status = { ...status, reason: text(status.reason) };
  }
  return out as T;
}
