/**
 * What every sysfs step shares: where a device's attributes live, the check that the device at that port is
 * still the target (never step on a non-target: a port can be taken by another device between the decision
 * and the write), and errno -> a stable heal code with one line and a hint.
 *
 * Real layout (Documentation/ABI/testing/sysfs-bus-usb): /sys/bus/usb/devices/1-1.4 is the device on port 4
 * of the hub at 1-1; that hub's ports are /sys/bus/usb/devices/1-1:1.0/1-1-port<N>; a root hub usbB has its
 * ports under B-0:1.0/usbB-port<N>.
 */
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, errnoOf, ReplugError } from '../../errors.js';
import type { TargetSpec } from '../../usb/ids.js';
import type { UsbDevice } from '../../usb/types.js';

/** The slice of node:fs/promises the steps use (injected in tests that need an errno the host won't give). */
export interface HealFs {
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  writeFile(path: string, data: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readlink(path: string): Promise<string>;
  access(path: string, mode?: number): Promise<void>;
}

export const nodeFs: HealFs = {
  readFile: (p, e) => fsp.readFile(p, e),
  writeFile: (p, d) => fsp.writeFile(p, d),
  readdir: (p) => fsp.readdir(p),
  readlink: (p) => fsp.readlink(p),
  access: (p, m) => fsp.access(p, m),
};

/** One target as the steps see it: the spec (IDs it may have) and the device instance the session chose. */
export interface HealTarget {
  spec: TargetSpec;
  device: UsbDevice;
  /** Other targets of this agent: a hub port they share with the target is not "shared with a stranger". */
  others: readonly TargetSpec[];
}

export const PERMISSION_HINT =
  'sysfs heal steps need root and a writable /sys: natively run as root; in Docker /sys is read-only ' +
  'unless the container is --privileged (docs/heal.md)';

export function devicesDir(sysfsRoot: string): string {
  return join(sysfsRoot, 'bus', 'usb', 'devices');
}

export function portPathOf(t: HealTarget): string {
  const p = t.device.portPath;
  if (!p)
    throw new ReplugError(ErrorCodes.HEAL_UNSUPPORTED, 'the device has no sysfs port path', {
      hint: 'the sysfs source must be running to heal through sysfs',
    });
  return p;
}

/** Does the device described by sysfs entry `dir` match `spec` (its vid:pid, or one of its other IDs)? */
export async function entryMatches(fs: HealFs, dir: string, spec: TargetSpec): Promise<boolean> {
  const read = async (name: string) => (await fs.readFile(join(dir, name), 'utf8').catch(() => '')).trim();
  const [vid, pid, serial] = await Promise.all([read('idVendor'), read('idProduct'), read('serial')]);
  const ids = [{ vid: spec.vid, pid: spec.pid }, ...(spec.alt ?? [])];
  if (!ids.some((id) => id.vid === vid && id.pid === pid)) return false;
  return spec.serial === undefined || spec.serial === serial;
}

/** Refuses (HEAL_REFUSED / HEAL_NOT_PRESENT) unless the entry at the target's port is the target itself. */
export async function verifyTarget(fs: HealFs, sysfsRoot: string, t: HealTarget): Promise<string> {
  const dir = join(devicesDir(sysfsRoot), portPathOf(t));
  try {
    await fs.access(dir);
  } catch {
    throw new ReplugError(ErrorCodes.HEAL_NOT_PRESENT, `no device at port ${t.device.portPath}`);
  }
  if (!(await entryMatches(fs, dir, t.spec)))
    throw new ReplugError(
      ErrorCodes.HEAL_REFUSED,
      `the device at port ${t.device.portPath} is not the target ${t.spec.vid}:${t.spec.pid}: not touched`,
    );
  return dir;
}

/** A sysfs write whose errno becomes a heal code the user can act on. */
export async function writeAttr(fs: HealFs, file: string, value: string, what: string): Promise<void> {
  try {
    await fs.writeFile(file, value);
  } catch (err) {
    throw healError(err, what, file);
  }
}

export function healError(err: unknown, what: string, file: string): ReplugError {
  if (err instanceof ReplugError) return err;
  const errno = errnoOf(err);
  const msg = `${what}: ${errno ?? (err instanceof Error ? err.message : String(err))} writing ${file}`;
  if (errno === 'EACCES' || errno === 'EPERM' || errno === 'EROFS')
    return new ReplugError(ErrorCodes.HEAL_PERMISSION, msg, { hint: PERMISSION_HINT, cause: err });
  if (errno === 'ENOENT')
    return new ReplugError(ErrorCodes.HEAL_UNSUPPORTED, msg, {
      hint: 'this kernel or hub has no such control (docs/heal.md)',
      cause: err,
    });
  if (errno === 'ENODEV') return new ReplugError(ErrorCodes.HEAL_NOT_PRESENT, msg, { cause: err });
  return new ReplugError(ErrorCodes.HEAL_FAILED, msg, { cause: err });
}
