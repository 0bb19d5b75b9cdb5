/**
 * Step `port-power`: turn the hub port the target hangs on off and on through its sysfs `disable`
 * attribute (Documentation/ABI/testing/sysfs-bus-usb, .../<hub>:1.0/<hub>-port<N>/disable). Writing 1
 * disconnects the device and clears the port's PORT_POWER feature; 0 powers it again and the device
 * enumerates afresh, with a new address.
 *
 * What reaches the device depends on the hub (wHubCharacteristics bits 1:0): with per-port switching VBUS
 * of that port really goes off; with ganged switching (the Raspberry Pi 4's VL805 root hub, many cheap hubs)
 * the hub may switch every port together, or only on the last port off; hubs without power switching keep
 * VBUS on and the step is a logical disconnect. Hence the safety rule: the step refuses a hub that also
 * carries a device that is not a target, unless --heal-port-shared.
 */
import { join } from 'node:path';
import { ErrorCodes, ReplugError } from '../../errors.js';
import type { Clock } from '../../util/clock.js';
import { sleep } from '../../util/clock.js';
import {
  devicesDir,
  entryMatches,
  type HealFs,
  type HealTarget,
  nodeFs,
  portPathOf,
  verifyTarget,
  writeAttr,
} from './sysfs.js';
import type { HealStep } from './types.js';

export interface PortPowerOptions {
  sysfsRoot: string;
  clock: Clock;
  fs?: HealFs;
  /** Power-off time, so the device really loses power (default 2000 ms). */
  offMs?: number;
  /** --heal-port-shared: cycle a hub port even when the hub carries non-target devices. */
  shared?: boolean;
}

/** The hub a port path hangs on and the port number: `1-1.4` -> hub `1-1`, port 4; `1-2` -> `usb1`, 2. */
export function hubPort(portPath: string): { hub: string; hubInterface: string; port: number } {
  const m = /^(\d+)-([\d.]+)$/.exec(portPath);
  if (!m) throw new ReplugError(ErrorCodes.HEAL_UNSUPPORTED, `"${portPath}" is not a USB port path`);
  const [bus, chain] = [m[1] as string, (m[2] as string).split('.')];
  const port = Number(chain.pop());
  if (chain.length === 0) return { hub: `usb${bus}`, hubInterface: `${bus}-0:1.0`, port };
  const hub = `${bus}-${chain.join('.')}`;
  return { hub, hubInterface: `${hub}:1.0`, port };
}

/** Devices on the same hub as the target (its other ports, and what hangs behind them), by entry name. */
async function neighbours(fs: HealFs, sysfsRoot: string, portPath: string): Promise<string[]> {
  const { hub } = hubPort(portPath);
  const prefix = hub.startsWith('usb') ? `${hub.slice(3)}-` : `${hub}.`;
  const names = await fs.readdir(devicesDir(sysfsRoot));
  return names.filter(
    (n) => n.startsWith(prefix) && !n.includes(':') && n !== portPath && !n.startsWith(`${portPath}.`),
  );
}

async function refuseShared(fs: HealFs, sysfsRoot: string, t: HealTarget): Promise<void> {
  const strangers: string[] = [];
  for (const name of await neighbours(fs, sysfsRoot, portPathOf(t))) {
    const dir = join(devicesDir(sysfsRoot), name);
    let ours = false;
    for (const spec of [t.spec, ...t.others]) if (await entryMatches(fs, dir, spec)) ours = true;
    if (!ours) strangers.push(name);
  }
  if (strangers.length > 0)
    throw new ReplugError(
      ErrorCodes.HEAL_REFUSED,
      `hub ${hubPort(portPathOf(t)).hub} also carries ${strangers.join(', ')}, not a target: port power not cycled`,
      { hint: 'a ganged hub would cut their power too; --heal-port-shared allows it' },
    );
}

export function portPowerStep(o: PortPowerOptions): HealStep {
  const fs = o.fs ?? nodeFs;
  return {
    name: 'port-power',
    async run(target, signal) {
      await verifyTarget(fs, o.sysfsRoot, target);
      if (!o.shared) await refuseShared(fs, o.sysfsRoot, target);
      const { hub, hubInterface, port } = hubPort(portPathOf(target));
      const file = join(devicesDir(o.sysfsRoot), hubInterface, `${hub}-port${port}`, 'disable');
      await writeAttr(fs, file, '1', `turning off port ${port} of hub ${hub}`);
      try {
        await sleep(o.clock, o.offMs ?? 2000, signal);
      } finally {
        // On again whatever happens: a port left disabled stays dead until the hub is reset.
        await writeAttr(fs, file, '0', `turning port ${port} of hub ${hub} on again`);
      }
    },
  };
}
