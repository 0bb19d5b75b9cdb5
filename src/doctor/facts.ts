/**
 * Collects the raw inputs doctor needs by reading files only (no exec, no sockets), under injected roots, then
 * hands them to the pure derivations in derive.ts. Every read is allowed to fail: in a container half of
 * /proc may be masked, and "could not read" is itself evidence.
 */
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sharedUsbFs } from '../usb/bounded-io.js';
import { deriveFacts } from './derive.js';
import type { DoctorRoots, NetIface, OpenOutcome, RawInputs, RuntimeFacts } from './types.js';

export type { NetIface, RawInputs } from './types.js';

export type TryOpen = (path: string) => Promise<OpenOutcome>;

export interface CollectOptions {
  /** Opens a usbfs node read-only and closes it; injected because cgroup v2 device rules are eBPF, unreadable. */
  tryOpen?: TryOpen;
}

/** Read-only open then close: what lsusb does too, harmless to the device. */
export const defaultTryOpen: TryOpen = async (path) => {
  try {
    // Bounded, non-blocking and type-checked (issue 12): a FIFO in place of the node blocked start-up.
    await sharedUsbFs.readNode(path, 0);
    return 'ok';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'unknown';
  }
};

async function text(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function link(path: string): Promise<{ target?: string; error?: string }> {
  try {
    return { target: await readlink(path) };
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code ?? 'error' };
  }
}

async function list(path: string): Promise<string[] | undefined> {
  try {
    return (await readdir(path)).sort();
  } catch {
    return undefined;
  }
}

async function readIfaces(sys: string): Promise<NetIface[] | undefined> {
  const names = await list(join(sys, 'class/net'));
  if (!names) return undefined;
  const out: NetIface[] = [];
  for (const name of names) {
    const dir = join(sys, 'class/net', name);
    const target = (await link(dir)).target ?? '';
    const num = async (file: string) => {
      const t = await text(join(dir, file));
      const n = t === undefined ? Number.NaN : Number(t.trim());
      return Number.isFinite(n) ? n : undefined;
    };
    const iface: NetIface = {
      name,
      hasDevice: await exists(join(dir, 'device')),
      virtual: target.includes('/virtual/'),
    };
    const ifindex = await num('ifindex');
    const iflink = await num('iflink');
    if (ifindex !== undefined) iface.ifindex = ifindex;
    if (iflink !== undefined) iface.iflink = iflink;
    out.push(iface);
  }
  return out;
}

/** usbfs nodes as `BBB/DDD` (bus dirs are three digits, device files three digits: drivers/usb/core/usb.c). */
async function readNodes(dev: string): Promise<string[]> {
  const nodes: string[] = [];
  for (const bus of (await list(join(dev, 'bus/usb'))) ?? []) {
    if (!/^\d{3}$/.test(bus)) continue;
    for (const node of (await list(join(dev, 'bus/usb', bus))) ?? []) {
      if (/^\d{3}$/.test(node)) nodes.push(`${bus}/${node}`);
    }
  }
  return nodes;
}

async function readDevicesList(sys: string, selfCgroup: string | undefined): Promise<string | undefined> {
  // Inside a container the v1 devices hierarchy is usually mounted at its own cgroup (root = /docker/<id>);
  // on a host it is the full tree, so also try the path /proc/self/cgroup names.
  const direct = await text(join(sys, 'fs/cgroup/devices/devices.list'));
  if (direct !== undefined) return direct;
  const line = selfCgroup?.split('\n').find((l) => /^\d+:([^:]*,)?devices(,[^:]*)?:/.test(l));
  const path = line?.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
  return path ? text(join(sys, 'fs/cgroup/devices', path, 'devices.list')) : undefined;
}

export async function readRaw(
  roots: DoctorRoots,
  env: Record<string, string | undefined>,
  options: CollectOptions = {},
): Promise<RawInputs> {
  const { proc, sys, dev, run, root } = roots;
  const tryOpen = options.tryOpen ?? defaultTryOpen;
  const selfCgroup = await text(join(proc, 'self/cgroup'));
  const pid1Net = await link(join(proc, '1/ns/net'));
  const devNodes = await readNodes(dev);
  const firstNode = devNodes[0];
  const usbDevices = (await list(join(sys, 'bus/usb/devices'))) ?? [];
  return {
    env,
    dockerenv: await exists(join(root, '.dockerenv')),
    containerenv: (await exists(join(run, '.containerenv')))
      ? ((await text(join(run, '.containerenv'))) ?? '')
      : undefined,
    selfCgroup,
    pid1Cgroup: await text(join(proc, '1/cgroup')),
    mountinfo: await text(join(proc, 'self/mountinfo')),
    pid1Environ: await text(join(proc, '1/environ')),
    osrelease: (await text(join(proc, 'sys/kernel/osrelease')))?.trim(),
    ns: {
      selfNet: (await link(join(proc, 'self/ns/net'))).target,
      selfPid: (await link(join(proc, 'self/ns/pid'))).target,
      selfUser: (await link(join(proc, 'self/ns/user'))).target,
      pid1Net: pid1Net.target,
      pid1NetError: pid1Net.error,
    },
    uidMap: await text(join(proc, 'self/uid_map')),
    procNetDev: await text(join(proc, 'net/dev')),
    sysClassNet: await readIfaces(sys),
    udevControl: await exists(join(run, 'udev/control')),
    udevData: await exists(join(run, 'udev/data')),
    devBusUsb: await exists(join(dev, 'bus/usb')),
    devNodes,
    devicesList: await readDevicesList(sys, selfCgroup),
    openResult: firstNode
      ? { node: `/dev/bus/usb/${firstNode}`, outcome: await tryOpen(join(dev, 'bus/usb', firstNode)) }
      : undefined,
    sysBusUsb: await exists(join(sys, 'bus/usb')),
    // Interfaces (`1-1:1.0`) are not devices; root hubs (`usb1`) are.
    sysUsbDevices: usbDevices.filter((d) => !d.includes(':')),
  };
}

/** Facts about this host or container, read from files under the given roots. */
export async function collectFacts(
  roots: DoctorRoots,
  env: Record<string, string | undefined>,
  options: CollectOptions = {},
): Promise<RuntimeFacts> {
  return deriveFacts(await readRaw(roots, env, options));
}
