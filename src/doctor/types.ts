/**
 * What doctor found, as plain data. Every fact carries its evidence (the lines or files that decided it), so
 * a user can check the reasoning and a wrong heuristic is visible rather than silently confident.
 */

export type Confidence = 'high' | 'medium' | 'low';

export type RuntimeKind = 'native' | 'docker' | 'podman' | 'kubernetes' | 'lxc' | 'containerd' | 'container';

/** The filesystem roots doctor reads (injected so tests use crafted trees). */
export interface DoctorRoots {
  proc: string;
  sys: string;
  dev: string;
  run: string;
  /** For /.dockerenv. */
  root: string;
}

export const defaultRoots: DoctorRoots = { proc: '/proc', sys: '/sys', dev: '/dev', run: '/run', root: '/' };

/** Result of trying to open a usbfs node read-only: 'ok', or the errno (EPERM = cgroup, EACCES = mode bits). */
export type OpenOutcome = 'ok' | 'EPERM' | 'EACCES' | 'ENOENT' | 'ENXIO' | 'ENODEV' | 'EBUSY' | string;

export interface RuntimeFact {
  kind: RuntimeKind;
  confidence: Confidence;
  evidence: string[];
}

export interface NetnsFact {
  /** `host`: the initial network namespace (or the one pid 1 of the host uses); `own`: a private one. */
  kind: 'host' | 'own' | 'unknown';
  confidence: Confidence;
  /** `net:[inode]` of this process, when readable. */
  inode?: number;
  interfaces: string[];
  evidence: string[];
}

export interface UdevFact {
  /** /run/udev/control: libudev's sign that udevd runs (and libusb's udev backend needs it). */
  control: boolean;
  /** /run/udev/data: udevd's database. */
  dataDir: boolean;
  evidence: string[];
}

export type BusUsbKind =
  /** /dev/bus/usb is (on) the kernel's devtmpfs: nodes come and go with the devices. */
  | 'live'
  /** /dev/bus/usb bind-mounted from the host's devtmpfs: live too. */
  | 'bind'
  /** Single nodes (`--device /dev/bus/usb/001/004`), or a copy made at start (`--privileged`): a snapshot. */
  | 'nodes'
  | 'absent';

export interface DevFact {
  /** Filesystem type of /dev: devtmpfs is the kernel's live view; tmpfs is a runtime's snapshot. */
  fsType: string;
  kind: 'devtmpfs' | 'tmpfs' | 'other' | 'unknown';
  busUsb: BusUsbKind;
  /** Nodes present now, as `BBB/DDD`. */
  nodes: string[];
  /** Mount points of single nodes under /dev/bus/usb (rootless runtimes bind-mount `--device` nodes). */
  boundNodes: string[];
  evidence: string[];
}

export interface CgroupFact {
  version: 'v1' | 'v2' | 'hybrid' | 'unknown';
  /**
   * Whether opening usbfs nodes (char 189:*) is allowed: `some` = only the minors allowed at start (a
   * replugged device gets a new minor and is denied).
   */
  usbAccess: 'allowed' | 'some' | 'denied' | 'unknown';
  /** When a node could be opened, or why not (EACCES = file mode, not cgroup). */
  openResult?: { node: string; outcome: OpenOutcome };
  evidence: string[];
}

export interface UsernsFact {
  kind: 'initial' | 'own' | 'unknown';
  uidMap: string;
  evidence: string[];
}

export interface UsbBusFact {
  present: boolean;
  /** Entries in /sys/bus/usb/devices that are devices (not interfaces `1-1:1.0`), root hubs included. */
  deviceCount: number;
  sysfsMode: 'rw' | 'ro' | 'unknown';
  evidence: string[];
}

export interface KernelUeventFact {
  /** Whether NETLINK_KOBJECT_UEVENT group 1 messages reach this network namespace. */
  reach: 'yes' | 'no' | 'unknown';
  why: string;
}

export interface RuntimeFacts {
  kernel: string;
  runtime: RuntimeFact;
  netns: NetnsFact;
  udev: UdevFact;
  dev: DevFact;
  cgroup: CgroupFact;
  userns: UsernsFact;
  usbBus: UsbBusFact;
  kernelUevents: KernelUeventFact;
}

/** What doctor read from the host, before deriving facts (facts.ts reads it, derive*.ts decide). */
export interface NetIface {
  name: string;
  /** sysfs `device` link: a real (PCI/USB/virtio) NIC, which only the host's netns normally holds. */
  hasDevice: boolean;
  /** sysfs class/net link target lives under devices/virtual. */
  virtual: boolean;
  ifindex?: number;
  /** iflink != ifindex means the peer lives elsewhere: a veth whose other end is in another netns. */
  iflink?: number;
}

/** Everything read from the world; derive.ts turns it into facts without touching it again. */
export interface RawInputs {
  env: Record<string, string | undefined>;
  dockerenv: boolean;
  /** Contents of /run/.containerenv (podman writes engine=, rootless=), or undefined when absent. */
  containerenv: string | undefined;
  selfCgroup: string | undefined;
  pid1Cgroup: string | undefined;
  mountinfo: string | undefined;
  pid1Environ: string | undefined;
  osrelease: string | undefined;
  ns: { selfNet?: string; selfPid?: string; selfUser?: string; pid1Net?: string; pid1NetError?: string };
  uidMap: string | undefined;
  procNetDev: string | undefined;
  sysClassNet: NetIface[] | undefined;
  udevControl: boolean;
  udevData: boolean;
  devBusUsb: boolean;
  devNodes: string[];
  devicesList: string | undefined;
  openResult: { node: string; outcome: OpenOutcome } | undefined;
  sysBusUsb: boolean;
  sysUsbDevices: string[];
}
