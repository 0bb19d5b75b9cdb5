/**
 * Pure derivations for what decides whether USB devices can be seen and opened: /dev, cgroup device rules,
 * udev's runtime dir, the user namespace and the USB bus in sysfs.
 */

import {
  cgroupVersion,
  isIdentityMap,
  type MountEntry,
  mountAt,
  parseCgroup,
  parseDevicesList,
  parseIdMap,
  parseNsLink,
  usbRuleCoverage,
} from './parse.js';
import type { CgroupFact, DevFact, RawInputs, UdevFact, UsbBusFact, UsernsFact } from './types.js';

/** include/linux/proc_ns.h: the initial user namespace's fixed inode (since Linux 3.8). */
export const INIT_USER_NS_INO = 0xeffffffd;

export function deriveUdev(raw: RawInputs, mounts: readonly MountEntry[]): UdevFact {
  const evidence: string[] = [];
  const mount = mountAt(mounts, '/run/udev');
  if (mount)
    evidence.push(`/run/udev mounted (${mount.fsType}, ${mount.options.includes('ro') ? 'ro' : 'rw'})`);
  evidence.push(raw.udevControl ? '/run/udev/control present' : '/run/udev/control absent');
  evidence.push(raw.udevData ? '/run/udev/data present' : '/run/udev/data absent');
  return { control: raw.udevControl, dataDir: raw.udevData, evidence };
}

export function deriveDev(raw: RawInputs, mounts: readonly MountEntry[]): DevFact {
  const devMount = mountAt(mounts, '/dev');
  const fsType = devMount?.fsType ?? 'unknown';
  const kind: DevFact['kind'] =
    fsType === 'devtmpfs'
      ? 'devtmpfs'
      : fsType === 'tmpfs'
        ? 'tmpfs'
        : fsType === 'unknown'
          ? 'unknown'
          : 'other';
  const evidence: string[] = [
    devMount ? `/dev is ${fsType} (${devMount.source})` : 'no mountinfo entry for /dev',
  ];
  const dirMount = mountAt(mounts, '/dev/bus/usb');
  const boundNodes = mounts
    .filter((m) => m.mountPoint.startsWith('/dev/bus/usb/'))
    .map((m) => m.mountPoint)
    .sort();
  const nodes = raw.devNodes;
  let busUsb: DevFact['busUsb'];
  if (!raw.devBusUsb) {
    busUsb = 'absent';
    evidence.push('/dev/bus/usb absent');
  } else if (dirMount) {
    // A bind of the host's devtmpfs directory is live: the kernel adds nodes there as devices appear.
    busUsb = dirMount.fsType === 'devtmpfs' ? 'bind' : 'nodes';
    evidence.push(`/dev/bus/usb mounted from ${dirMount.fsType} ${dirMount.root}`);
  } else if (kind === 'devtmpfs' || kind === 'unknown') {
    busUsb = 'live';
    evidence.push(
      kind === 'devtmpfs' ? '/dev/bus/usb lives on devtmpfs' : 'assuming /dev/bus/usb is live (no mountinfo)',
    );
  } else {
    // On a tmpfs /dev the runtime created these nodes once, at start: `--device` (mknod, or a bind per node
    // in a user namespace) or `--privileged` (a copy of every host node). New addresses never appear.
    busUsb = 'nodes';
    evidence.push(
      boundNodes.length
        ? `single nodes bind-mounted: ${boundNodes.join(', ')}`
        : `nodes created at container start on ${fsType}: ${nodes.length ? nodes.join(', ') : '(none)'}`,
    );
  }
  return { fsType, kind, busUsb, nodes, boundNodes, evidence };
}

export function deriveCgroup(raw: RawInputs, dev: DevFact): CgroupFact {
  const version = cgroupVersion(parseCgroup(raw.selfCgroup ?? ''));
  const evidence: string[] = [`cgroup ${version}`];
  let usbAccess: CgroupFact['usbAccess'] = 'unknown';
  if (raw.devicesList !== undefined) {
    const coverage = usbRuleCoverage(parseDevicesList(raw.devicesList));
    const rules = raw.devicesList.trim().split('\n').filter(Boolean);
    evidence.push(
      `devices.list: ${rules.slice(0, 4).join('; ')}${rules.length > 4 ? `; ... (${rules.length} rules)` : ''}`,
    );
    usbAccess = coverage === 'all' ? 'allowed' : coverage === 'some' ? 'some' : 'denied';
  } else if (version === 'v2') {
    evidence.push('cgroup v2 device rules are eBPF programs and cannot be read');
  }
  const fact: CgroupFact = { version, usbAccess, evidence };
  const tried = raw.openResult;
  if (tried) {
    fact.openResult = tried;
    if (tried.outcome === 'ok') {
      evidence.push(`opened ${tried.node} read-only`);
      // One node opening says nothing about minors that do not exist yet when the node was passed singly.
      if (usbAccess === 'unknown')
        usbAccess = dev.busUsb === 'nodes' && version === 'v2' ? 'some' : 'allowed';
    } else if (tried.outcome === 'EPERM') {
      // devcgroup_check_permission returns -EPERM; mode bits give EACCES.
      evidence.push(`opening ${tried.node} failed with EPERM: the device cgroup denies it`);
      usbAccess = 'denied';
    } else if (tried.outcome === 'EACCES') {
      evidence.push(`opening ${tried.node} failed with EACCES: file permissions, not the cgroup`);
    } else {
      evidence.push(`opening ${tried.node} failed with ${tried.outcome}`);
    }
  } else if (raw.devicesList === undefined) {
    evidence.push('no usbfs node to test an open with');
  }
  fact.usbAccess = usbAccess;
  return fact;
}

export function deriveUserns(raw: RawInputs): UsernsFact {
  const evidence: string[] = [];
  const ino = raw.ns.selfUser ? parseNsLink(raw.ns.selfUser) : undefined;
  const uidMap = (raw.uidMap ?? '').trim().replace(/\s+/g, ' ');
  let kind: UsernsFact['kind'] = 'unknown';
  if (raw.uidMap !== undefined) {
    const identity = isIdentityMap(parseIdMap(raw.uidMap));
    kind = identity ? 'initial' : 'own';
    evidence.push(`uid_map: ${uidMap}${identity ? ' (identity)' : ' (remapped: rootless or userns-remap)'}`);
  }
  if (ino !== undefined) {
    const initial = ino === INIT_USER_NS_INO;
    evidence.push(`user:[${ino}] ${initial ? 'is' : 'is not'} the initial user namespace`);
    if (kind === 'unknown') kind = initial ? 'initial' : 'own';
  }
  return { kind, uidMap, evidence };
}

export function deriveUsbBus(raw: RawInputs, mounts: readonly MountEntry[]): UsbBusFact {
  const sysMount = mountAt(mounts, '/sys');
  const sysfsMode: UsbBusFact['sysfsMode'] = sysMount
    ? sysMount.options.includes('ro')
      ? 'ro'
      : 'rw'
    : 'unknown';
  const evidence = [
    raw.sysBusUsb
      ? `/sys/bus/usb present, ${raw.sysUsbDevices.length} devices (root hubs included)`
      : '/sys/bus/usb absent: no USB host controller or usbcore not loaded',
  ];
  if (sysMount) evidence.push(`/sys mounted ${sysfsMode}`);
  return { present: raw.sysBusUsb, deviceCount: raw.sysUsbDevices.length, sysfsMode, evidence };
}
