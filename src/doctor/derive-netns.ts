/**
 * Own network namespace or the host's? There is no direct question to ask the kernel from inside, so this
 * tries the strong signals first and falls back to reading the interfaces this namespace can see. It matters
 * because udev's broadcasts (netlink group 2) never leave the host's namespace (moby/moby#35359).
 */

import { kernelAtLeast, parseNetDev, parseNsLink } from './parse.js';
import type { NetIface, NetnsFact, RawInputs } from './types.js';

/**
 * include/linux/proc_ns.h: init_net got a fixed inode (PROC_NET_INIT_INO) in Linux 6.18. Dynamically
 * allocated namespace inodes start at 0xF0000000, so this number can only ever be the initial netns.
 */
export const INIT_NET_NS_INO = 0xeffffff9;
const INIT_PID_NS_INO = 0xeffffffc;

// Interfaces that only a host (or a --net=host container) sees: bridges and the host ends of veth pairs
// created by container runtimes and CNI plugins.
const HOST_ONLY_NAME =
  /^(docker\d+|br-[0-9a-f]{12}|cni\d+|flannel\.|cali[0-9a-f]|virbr\d+|podman\d+|veth|lxcbr\d+|cilium_|kube-)/;

function fromInterfaces(ifaces: readonly NetIface[]): Omit<NetnsFact, 'inode' | 'interfaces'> | undefined {
  const physical = ifaces.filter((i) => i.hasDevice);
  const bridges = ifaces.filter((i) => HOST_ONLY_NAME.test(i.name));
  if (physical.length > 0 || bridges.length > 0) {
    const evidence: string[] = [];
    if (physical.length)
      evidence.push(`hardware NIC visible: ${physical.map((i) => i.name).join(', ')} (sysfs device link)`);
    if (bridges.length)
      evidence.push(`host-side runtime interfaces visible: ${bridges.map((i) => i.name).join(', ')}`);
    return { kind: 'host', confidence: 'medium', evidence };
  }
  const others = ifaces.filter((i) => i.name !== 'lo');
  const vethPeers = others.filter(
    (i) => i.ifindex !== undefined && i.iflink !== undefined && i.iflink !== i.ifindex,
  );
  if (others.length > 0 && others.every((i) => !i.hasDevice)) {
    const evidence = [`only virtual interfaces: ${ifaces.map((i) => i.name).join(', ')}`];
    if (vethPeers.length) {
      evidence.push(
        `${vethPeers.map((i) => `${i.name} iflink=${i.iflink} != ifindex=${i.ifindex}`).join(', ')}: veth whose peer is in another namespace`,
      );
    }
    return { kind: 'own', confidence: vethPeers.length ? 'medium' : 'low', evidence };
  }
  if (others.length === 0 && ifaces.length > 0) {
    return {
      kind: 'own',
      confidence: 'medium',
      evidence: ['only lo: a private namespace with no network (--net=none)'],
    };
  }
  return undefined;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  return sa.size === new Set(b).size && b.every((x) => sa.has(x));
}

export function deriveNetns(raw: RawInputs, kernel: [number, number] | undefined): NetnsFact {
  const inode = raw.ns.selfNet ? parseNsLink(raw.ns.selfNet) : undefined;
  // /proc/net/dev follows this process's netns; /sys/class/net shows the netns of whoever mounted /sys.
  const procNames = raw.procNetDev ? parseNetDev(raw.procNetDev) : undefined;
  const sysNames = raw.sysClassNet?.map((i) => i.name);
  const interfaces = procNames?.length ? procNames : (sysNames ?? []);
  const base = inode === undefined ? { interfaces } : { inode, interfaces };

  if (inode === INIT_NET_NS_INO) {
    return {
      ...base,
      kind: 'host',
      confidence: 'high',
      evidence: [`net:[${inode}] is the initial namespace's fixed inode`],
    };
  }
  const pidIno = raw.ns.selfPid ? parseNsLink(raw.ns.selfPid) : undefined;
  const pid1Ino = raw.ns.pid1Net ? parseNsLink(raw.ns.pid1Net) : undefined;
  // In the initial pid namespace, pid 1 is the host's init, so its netns is the host's.
  if (pidIno === INIT_PID_NS_INO && inode !== undefined && pid1Ino !== undefined) {
    const same = pid1Ino === inode;
    return {
      ...base,
      kind: same ? 'host' : 'own',
      confidence: 'high',
      evidence: [`net:[${inode}] ${same ? '==' : '!='} net:[${pid1Ino}] of pid 1, the host's init`],
    };
  }
  if (inode !== undefined && kernelAtLeast(kernel, 6, 18)) {
    return {
      ...base,
      kind: 'own',
      confidence: 'high',
      evidence: [
        `net:[${inode}] is not init_net's fixed inode ${INIT_NET_NS_INO} (kernel >= 6.18 numbers it so)`,
      ],
    };
  }
  const pid1Note = raw.ns.pid1NetError ? [`/proc/1/ns/net unreadable (${raw.ns.pid1NetError})`] : [];
  if (procNames?.length && sysNames?.length && !sameSet(procNames, sysNames)) {
    return {
      ...base,
      kind: 'own',
      confidence: 'medium',
      evidence: [
        `/proc/net/dev lists ${procNames.join(', ')} but /sys/class/net shows ${sysNames.join(', ')}: /sys was mounted in another network namespace`,
        ...pid1Note,
      ],
    };
  }
  if (raw.sysClassNet) {
    const guess = fromInterfaces(raw.sysClassNet);
    if (guess) return { ...base, ...guess, evidence: [...guess.evidence, ...pid1Note] };
  }
  if (procNames) {
    // Weakest signal: names only, no sysfs to tell veths from NICs.
    const names = procNames;
    const hostish = names.filter((n) => HOST_ONLY_NAME.test(n));
    if (hostish.length) {
      return {
        ...base,
        kind: 'host',
        confidence: 'low',
        evidence: [`/proc/net/dev lists ${hostish.join(', ')}`],
      };
    }
    if (names.length > 0 && names.every((n) => n === 'lo' || /^eth\d+$/.test(n))) {
      return {
        ...base,
        kind: 'own',
        confidence: 'low',
        evidence: [`/proc/net/dev lists only ${names.join(', ')}`],
      };
    }
  }
  return { ...base, kind: 'unknown', confidence: 'low', evidence: ['no decisive signal', ...pid1Note] };
}
