/**
 * Which heal steps can work here, checked without touching a device: the file each step writes must be
 * writable by this process (access(2) W_OK: root, and not a read-only mount, which says EROFS). Used at the
 * agent's start (one warning per step that cannot work) and by `replug doctor`'s heal section.
 */
import { constants } from 'node:fs';
import { join } from 'node:path';
import { errnoOf } from '../errors.js';
import { devicesDir, type HealFs, nodeFs, PERMISSION_HINT } from './steps/sysfs.js';
import { DEVICE_STEPS, type DeviceStep } from './types.js';

export interface StepCapability {
  step: DeviceStep;
  ok: boolean;
  /** What the step needs, always. */
  needs: string;
  /** When not ok: why, and the fix. */
  reason?: string;
  fix?: string;
}

const NEEDS: Record<DeviceStep, string> = {
  reset: 'read-write open of the usbfs node /dev/bus/usb/BBB/DDD (USBDEVFS_RESET)',
  reauthorize: 'write to /sys/bus/usb/devices/<port>/authorized',
  'port-power': "write to the hub port's /sys/bus/usb/devices/<hub>:1.0/<hub>-port<N>/disable",
  rebind: 'write to /sys/bus/usb/drivers/usb/{unbind,bind}',
};

const CONTAINER_SYSFS_FIX =
  'natively: run as root; in Docker or Podman /sys is mounted read-only unless the container is --privileged';

async function writable(fs: HealFs, file: string): Promise<string | undefined> {
  try {
    await fs.access(file, constants.W_OK);
    return undefined;
  } catch (err) {
    return errnoOf(err) ?? String(err);
  }
}

/** The first file matching `pick` under the devices dir (a device's authorized, a hub port's disable). */
async function findUnder(
  fs: HealFs,
  sysfsRoot: string,
  pick: (entry: string) => Promise<string | undefined>,
) {
  const names = await fs.readdir(devicesDir(sysfsRoot)).catch(() => [] as string[]);
  for (const name of names.sort()) {
    const file = await pick(name);
    if (file) return file;
  }
  return undefined;
}

async function sysfsFile(fs: HealFs, sysfsRoot: string, step: DeviceStep): Promise<string | undefined> {
  const dir = devicesDir(sysfsRoot);
  if (step === 'rebind') return join(sysfsRoot, 'bus', 'usb', 'drivers', 'usb', 'bind');
  if (step === 'reauthorize') {
    const authorized = (rootHubs: boolean) =>
      findUnder(fs, sysfsRoot, async (n) => {
        if (n.includes(':') || n.startsWith('usb') !== rootHubs) return undefined;
        const f = join(dir, n, 'authorized');
        return (await fs.access(f).then(
          () => true,
          () => false,
        ))
          ? f
          : undefined;
      });
    // A plugged device's own file first; with nothing plugged yet, a root hub's: the kernel gives every
    // usb_device the same `authorized` attribute (mode 0644, same mount), so the verdict is the same, and the
    // check at the agent's start no longer says "no USB bus" on a host that has one but nothing plugged.
    return (await authorized(false)) ?? (await authorized(true));
  }
  return findUnder(fs, sysfsRoot, async (n) => {
    if (!n.includes(':')) return undefined;
    const ports = await fs.readdir(join(dir, n)).catch(() => [] as string[]);
    const port = ports.find((p) => /-port\d+$/.test(p));
    return port ? join(dir, n, port, 'disable') : undefined;
  });
}

async function check(
  fs: HealFs,
  roots: { sys: string; dev: string },
  step: DeviceStep,
): Promise<StepCapability> {
  const needs = NEEDS[step];
  const base = { step, needs };
  if (step === 'reset') {
    const errno = await writable(fs, join(roots.dev, 'bus', 'usb'));
    if (!errno) return { ...base, ok: true };
    return {
      ...base,
      ok: false,
      reason: `${join(roots.dev, 'bus', 'usb')}: ${errno}`,
      fix: "run as root or add a udev rule; in a container bind-mount /dev/bus/usb and allow it with --device-cgroup-rule='c 189:* rmw'",
    };
  }
  const file = await sysfsFile(fs, roots.sys, step);
  if (!file)
    return {
      ...base,
      ok: false,
      reason:
        step === 'port-power'
          ? 'no hub port has a `disable` attribute here (no USB bus, or a kernel without it)'
          : 'no USB device or root hub in sysfs to check against (no USB bus here)',
      fix:
        step === 'port-power'
          ? 'needs a kernel with the port disable attribute (docs/heal.md)'
          : 'run on a host with a USB controller; in a container, mount /sys as the host has it',
    };
  const errno = await writable(fs, file);
  if (!errno) return { ...base, ok: true };
  const fix = errno === 'EROFS' ? CONTAINER_SYSFS_FIX : PERMISSION_HINT;
  return { ...base, ok: false, reason: `${file}: ${errno}`, fix };
}

/** One verdict per step, in ladder order. */
export async function healCapabilities(
  roots: { sys: string; dev: string },
  steps: readonly DeviceStep[] = DEVICE_STEPS,
  fs: HealFs = nodeFs,
): Promise<StepCapability[]> {
  const wanted = DEVICE_STEPS.filter((s) => steps.includes(s));
  return Promise.all(wanted.map((s) => check(fs, roots, s)));
}
