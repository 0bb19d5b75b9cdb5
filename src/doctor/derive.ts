/**
 * Pure: raw inputs -> facts. Each derivation weighs several independent signals and records which ones
 * decided, because any single one lies somewhere (/.dockerenv survives in VMs booted from container
 * images; cgroup v2 with a private cgroupns shows `0::/` everywhere).
 */
import { deriveCgroup, deriveDev, deriveUdev, deriveUsbBus, deriveUserns } from './derive-devices.js';
import { deriveNetns } from './derive-netns.js';
import {
  kernelAtLeast,
  type MountEntry,
  mountAt,
  parseKernelVersion,
  parseMountinfo,
  parseNsLink,
} from './parse.js';
import type {
  KernelUeventFact,
  NetnsFact,
  RawInputs,
  RuntimeFact,
  RuntimeFacts,
  RuntimeKind,
  UsernsFact,
} from './types.js';

/** include/linux/proc_ns.h: the initial pid namespace has a fixed inode since Linux 3.8. */
export const INIT_PID_NS_INO = 0xeffffffc;

interface Signal {
  kind: RuntimeKind;
  evidence: string;
}

function cgroupSignals(label: string, text: string | undefined): Signal[] {
  if (!text) return [];
  const out: Signal[] = [];
  const lines = text.split('\n').filter(Boolean);
  const hit = (re: RegExp) => lines.find((l) => re.test(l));
  const add = (kind: RuntimeKind, re: RegExp) => {
    const line = hit(re);
    if (line) out.push({ kind, evidence: `${label}: ${line}` });
  };
  add('kubernetes', /kubepods/);
  add('podman', /libpod/);
  add('docker', /\/docker[/-]|docker-[0-9a-f]{12,}\.scope/);
  add('lxc', /\/lxc\/|lxc\.payload/);
  add('containerd', /cri-containerd|\/containerd\//);
  return out;
}

function mountSignals(mounts: readonly MountEntry[]): Signal[] {
  const out: Signal[] = [];
  const find = (pred: (m: MountEntry) => boolean) => mounts.find(pred);
  // Runtimes bind /etc/hostname, /etc/hosts and /etc/resolv.conf from their own state dirs: the source path
  // names the runtime even on cgroup v2 with a private cgroup namespace.
  const k8s = find(
    (m) => /\/kubelet\/pods\//.test(m.root) || m.mountPoint.startsWith('/run/secrets/kubernetes.io'),
  );
  if (k8s) out.push({ kind: 'kubernetes', evidence: `mountinfo: ${k8s.root} on ${k8s.mountPoint}` });
  const podman = find((m) => /overlay-containers\/[0-9a-f]+\/userdata\//.test(m.root));
  if (podman) out.push({ kind: 'podman', evidence: `mountinfo: ${podman.root} on ${podman.mountPoint}` });
  const docker = find((m) => /\/docker\/containers\/[0-9a-f]{64}\//.test(m.root));
  if (docker) out.push({ kind: 'docker', evidence: `mountinfo: ${docker.root} on ${docker.mountPoint}` });
  const containerd = find((m) => /io\.containerd\./.test(m.root));
  if (containerd)
    out.push({ kind: 'containerd', evidence: `mountinfo: ${containerd.root} on ${containerd.mountPoint}` });
  return out;
}

function envSignals(raw: RawInputs): Signal[] {
  const out: Signal[] = [];
  if (raw.env.KUBERNETES_SERVICE_HOST) {
    out.push({
      kind: 'kubernetes',
      evidence: `env KUBERNETES_SERVICE_HOST=${raw.env.KUBERNETES_SERVICE_HOST}`,
    });
  }
  if (raw.containerenv !== undefined) {
    const engine = /engine="([^"]*)"/.exec(raw.containerenv)?.[1];
    out.push({
      kind: 'podman',
      evidence: `/run/.containerenv present${engine ? ` (engine=${engine})` : ''}`,
    });
  }
  if (raw.dockerenv) out.push({ kind: 'docker', evidence: '/.dockerenv present' });
  // systemd's convention (systemd-detect-virt): container managers set container=<name> for pid 1.
  const pid1Container = raw.pid1Environ?.split('\0').find((p) => p.startsWith('container='));
  const ownContainer = raw.env.container ? `container=${raw.env.container}` : undefined;
  for (const [where, pair] of [
    ['/proc/1/environ', pid1Container],
    ['env', ownContainer],
  ] as const) {
    if (!pair) continue;
    const value = pair.slice('container='.length);
    const kind: RuntimeKind =
      value === 'podman'
        ? 'podman'
        : value === 'docker'
          ? 'docker'
          : value.startsWith('lxc')
            ? 'lxc'
            : 'container';
    out.push({ kind, evidence: `${where}: ${pair}` });
  }
  return out;
}

const PRECEDENCE: RuntimeKind[] = ['kubernetes', 'podman', 'lxc', 'docker', 'containerd', 'container'];

export function deriveRuntime(raw: RawInputs, mounts: readonly MountEntry[]): RuntimeFact {
  const signals = [
    ...envSignals(raw),
    ...cgroupSignals('/proc/1/cgroup', raw.pid1Cgroup),
    ...cgroupSignals('/proc/self/cgroup', raw.selfCgroup),
    ...mountSignals(mounts),
  ];
  const rootMount = mountAt(mounts, '/');
  const overlayRoot = rootMount !== undefined && /overlay|aufs|fuse-overlayfs/.test(rootMount.fsType);
  const pidIno = raw.ns.selfPid ? parseNsLink(raw.ns.selfPid) : undefined;
  const initialPid = pidIno === INIT_PID_NS_INO;
  // Unknown (unreadable link) is neither: only a readable, non-initial pid namespace counts as a signal.
  const otherPid = pidIno !== undefined && !initialPid;
  const context: string[] = [];
  if (rootMount)
    context.push(`root filesystem is ${rootMount.fsType}${overlayRoot ? ' (container image layers)' : ''}`);
  if (pidIno !== undefined) {
    context.push(
      `pid namespace ${initialPid ? 'is the initial one' : `is not the initial one (pid:[${pidIno}])`}`,
    );
  }

  // Kubernetes runs on docker/containerd, podman may leave docker-looking traces: the most specific wins.
  const kind = PRECEDENCE.find((k) => signals.some((s) => s.kind === k));
  if (kind) {
    const mine = signals.filter((s) => s.kind === kind).map((s) => s.evidence);
    const onlyMarker = signals.every((s) => s.evidence === '/.dockerenv present');
    // A lone /.dockerenv in the initial pid namespace on a non-overlay root: a VM or host booted from a
    // container image (e.g. a Firecracker microVM), not a container.
    if (onlyMarker && initialPid && !overlayRoot) {
      return {
        kind: 'native',
        confidence: 'medium',
        evidence: [
          ...context,
          '/.dockerenv present but nothing else says container: likely a VM built from a container image',
        ],
      };
    }
    const confidence =
      mine.length >= 2 || (mine.length === 1 && (overlayRoot || otherPid)) ? 'high' : 'medium';
    return { kind, confidence, evidence: [...mine, ...context] };
  }
  if (overlayRoot || otherPid) {
    return {
      kind: 'container',
      confidence: overlayRoot && otherPid ? 'medium' : 'low',
      evidence: context,
    };
  }
  return {
    kind: 'native',
    confidence: initialPid ? 'high' : 'medium',
    evidence: [...context, 'no container marker found'],
  };
}

export function deriveKernelUevents(
  kernel: [number, number] | undefined,
  netns: NetnsFact,
  userns: UsernsFact,
): KernelUeventFact {
  if (netns.kind === 'host') {
    return { reach: 'yes', why: 'the host network namespace receives every kernel uevent (netlink group 1)' };
  }
  if (userns.kind === 'initial') {
    return {
      reach: 'yes',
      why:
        netns.kind === 'own'
          ? 'this network namespace belongs to the initial user namespace (rootful), and the kernel broadcasts uevents to every such namespace'
          : 'rootful: kernel uevents reach any network namespace owned by the initial user namespace',
    };
  }
  if (userns.kind === 'own') {
    // Linux 4.18 "netns: restrict uevents" (a3498436b3a0): uevents go only to netns owned by init_user_ns.
    if (kernel && !kernelAtLeast(kernel, 4, 18)) {
      return { reach: 'yes', why: 'kernel before 4.18 broadcasts uevents to every network namespace' };
    }
    return {
      reach: netns.kind === 'own' ? 'no' : 'unknown',
      why: 'user namespace (rootless or userns-remap): since Linux 4.18 kernel uevents reach only network namespaces owned by the initial user namespace',
    };
  }
  return { reach: 'unknown', why: 'neither the network nor the user namespace could be determined' };
}

export function deriveFacts(raw: RawInputs): RuntimeFacts {
  const mounts = raw.mountinfo ? parseMountinfo(raw.mountinfo) : [];
  const kernel = parseKernelVersion(raw.osrelease ?? '');
  const runtime = deriveRuntime(raw, mounts);
  const netns = deriveNetns(raw, kernel);
  const userns = deriveUserns(raw);
  const dev = deriveDev(raw, mounts);
  return {
    kernel: raw.osrelease ?? 'unknown',
    runtime,
    netns,
    udev: deriveUdev(raw, mounts),
    dev,
    cgroup: deriveCgroup(raw, dev),
    userns,
    usbBus: deriveUsbBus(raw, mounts),
    kernelUevents: deriveKernelUevents(kernel, netns, userns),
  };
}
