/**
 * Pure: facts -> for each detection source, will it work here, why, and the exact fix. The table in
 * DESIGN.md "Detection: never trust one path" is the rule set; each branch cites the behaviour behind it.
 */
import { bindUsbFix, cgroupRuleFix, hostNetFix, relayFix, runUdevMountFix } from './fixes.js';
import type { RuntimeFacts } from './types.js';

export type DetectionSource = 'devfs' | 'sysfs' | 'nusb' | 'uevent' | 'libusb';
export type Works = 'yes' | 'no' | 'partial' | 'unknown';

export interface SourceVerdict {
  source: DetectionSource;
  label: string;
  works: Works;
  why: string;
  /** Exact changes that would make it work; empty when nothing to do (or nothing can be done). */
  fix: string[];
}

export interface DoctorVerdict {
  sources: SourceVerdict[];
  /** `replug relay` (issue 7) would make libusb/udev listeners here see replugs. */
  relayRecommended: boolean;
  /** One line: what replug and the apps beside it can expect here. */
  overall: string;
}

const LABELS: Record<DetectionSource, string> = {
  devfs: 'devfs inotify (/dev/bus/usb)',
  sysfs: 'sysfs rescan (/sys/bus/usb/devices)',
  nusb: 'usb v3 connect/disconnect (udev broadcasts)',
  uevent: 'kernel uevents (netlink group 1)',
  libusb: 'libusb apps beside replug (udev backend)',
};

type Judgement = Omit<SourceVerdict, 'source' | 'label'>;
const NO_BUS: Judgement = {
  works: 'no',
  why: 'no USB bus here (/sys/bus/usb absent): nothing to detect',
  fix: [],
};

function devfs(f: RuntimeFacts): Judgement {
  if (!f.usbBus.present) return NO_BUS;
  const container = f.runtime.kind !== 'native';
  if (f.dev.busUsb === 'absent') {
    return {
      works: 'no',
      why: '/dev/bus/usb does not exist here',
      fix: [
        container
          ? bindUsbFix(f)
          : 'mount devtmpfs on /dev (the kernel creates usbfs nodes there; CONFIG_DEVTMPFS)',
      ],
    };
  }
  if (f.dev.busUsb === 'nodes') {
    return {
      works: 'partial',
      why: `/dev/bus/usb holds only the nodes created at container start (${f.dev.nodes.join(', ') || 'none'}): a replugged device gets a new address whose node never appears here`,
      fix: [bindUsbFix(f)],
    };
  }
  if (f.cgroup.usbAccess === 'denied' || f.cgroup.usbAccess === 'some') {
    return {
      works: 'partial',
      why:
        f.cgroup.usbAccess === 'denied'
          ? 'nodes appear, but the device cgroup denies opening them, so the descriptor cannot be read'
          : 'nodes appear, but the device cgroup allows only the minors present at start; a replug gets a new minor',
      fix: [cgroupRuleFix(f)],
    };
  }
  if (f.cgroup.openResult?.outcome === 'EACCES') {
    return {
      works: 'partial',
      why: `nodes appear, but opening ${f.cgroup.openResult.node} fails with EACCES (file mode: this user may not read usbfs nodes), so the descriptor cannot be read`,
      fix: [
        container
          ? 'on the host, a udev rule giving the user access, e.g. SUBSYSTEM=="usb", MODE="0666" (rootless containers run as your host user)'
          : 'run as root, or add a udev rule, e.g. SUBSYSTEM=="usb", MODE="0660", GROUP="plugdev", and join that group',
      ],
    };
  }
  const unknownOpen =
    f.cgroup.usbAccess === 'unknown' ? ' (whether nodes can be opened is unknown until one exists)' : '';
  return {
    works: 'yes',
    why: `${f.dev.busUsb === 'bind' ? "/dev/bus/usb is the host's devtmpfs, bind-mounted" : '/dev/bus/usb is live devtmpfs'}: inotify fires when the kernel creates a node${unknownOpen}`,
    fix: [],
  };
}

function sysfs(f: RuntimeFacts): Judgement {
  if (!f.usbBus.present) return NO_BUS;
  return {
    works: 'yes',
    why: `sysfs shows the kernel's own device list in any namespace (${f.usbBus.deviceCount} devices now, /sys ${f.usbBus.sysfsMode}); found within one rescan interval`,
    fix: [],
  };
}

function udevBroadcasts(f: RuntimeFacts, what: string): Judgement {
  if (!f.usbBus.present) return NO_BUS;
  if (f.netns.kind === 'own') {
    if (f.udev.control && f.runtime.kind !== 'native') {
      return {
        works: 'unknown',
        why: `${what} only if a udevd runs inside this container: the host udevd's broadcasts never cross network namespaces (moby/moby#35359)`,
        fix: [hostNetFix(f)],
      };
    }
    const fix = f.kernelUevents.reach === 'yes' ? [relayFix(f), hostNetFix(f)] : [hostNetFix(f)];
    return {
      works: 'no',
      why: `udev broadcasts (netlink group 2) stay in the host's network namespace and never reach this one (moby/moby#35359)`,
      fix,
    };
  }
  if (f.netns.kind === 'unknown') {
    return {
      works: 'unknown',
      why: 'cannot tell whether this is the host network namespace',
      fix: [hostNetFix(f)],
    };
  }
  if (f.udev.control)
    return { works: 'yes', why: `udevd broadcasts in this (host) network namespace`, fix: [] };
  if (f.runtime.kind === 'native') {
    return {
      works: 'no',
      why: 'no udevd runs here (/run/udev/control absent), so nothing broadcasts udev events',
      fix: ['start systemd-udevd (or eudev); replug itself does not need it'],
    };
  }
  return {
    works: 'unknown',
    why: "host network namespace: the host udevd's broadcasts arrive if it runs, but /run/udev is not mounted to check",
    fix: [runUdevMountFix(f)],
  };
}

function uevent(f: RuntimeFacts): Judgement {
  if (!f.usbBus.present) return NO_BUS;
  const reach = f.kernelUevents.reach;
  if (reach === 'yes') return { works: 'yes', why: f.kernelUevents.why, fix: [] };
  if (reach === 'no') {
    return {
      works: 'no',
      why: f.kernelUevents.why,
      fix: [
        'run the container rootful (no user namespace), or share the host network namespace (--net=host)',
      ],
    };
  }
  return { works: 'unknown', why: f.kernelUevents.why, fix: [] };
}

function libusb(f: RuntimeFacts): Judgement {
  if (!f.usbBus.present) return NO_BUS;
  const base = udevBroadcasts(f, 'libusb hears replugs');
  const devfsFix = f.dev.busUsb === 'absent' || f.dev.busUsb === 'nodes' ? [bindUsbFix(f)] : [];
  if (base.works === 'no' && f.runtime.kind === 'native') {
    return { ...base, fix: [...base.fix, 'or use a libusb built with --disable-udev (netlink backend)'] };
  }
  if (base.works === 'no') {
    return {
      works: 'no',
      why: 'libusb scans once, then learns of devices only from udev broadcasts, which never reach this network namespace: a replugged device stays invisible until the app restarts (moby/moby#35359)',
      fix: [...base.fix, ...devfsFix],
    };
  }
  // libudev: udev_monitor_new_from_netlink() returns a dead monitor when /run/udev/control is missing and /dev
  // is not devtmpfs, so even --net=host needs /run/udev mounted.
  if (!f.udev.control && f.dev.kind !== 'devtmpfs') {
    return {
      works: 'no',
      why: 'libudev disables its monitor: /run/udev/control is missing and /dev is not devtmpfs',
      fix: [runUdevMountFix(f), ...devfsFix],
    };
  }
  if (base.works === 'yes' && devfsFix.length) {
    return {
      works: 'partial',
      why: 'udev events arrive, but the new /dev/bus/usb node of a replugged device does not',
      fix: devfsFix,
    };
  }
  return { ...base, fix: [...base.fix, ...devfsFix] };
}

function overallLine(
  f: RuntimeFacts,
  byName: Record<DetectionSource, SourceVerdict>,
  relay: boolean,
): string {
  if (!f.usbBus.present) {
    return 'no USB bus here (/sys/bus/usb absent): replug runs, says so, and starts watching if a bus appears';
  }
  const detectors = (['devfs', 'sysfs', 'uevent', 'nusb'] as const).filter((s) => byName[s].works === 'yes');
  const canOpen = byName.devfs.works === 'yes';
  const first = canOpen
    ? `replug will reconnect here via ${detectors.join('+')}`
    : `replug will see replugs via ${detectors.join('+') || 'nothing'} but cannot reliably open devices: ${byName.devfs.fix[0] ?? byName.devfs.why}`;
  const lib = byName.libusb;
  if (lib.works === 'yes') return `${first}; libusb apps beside it will see replugs too`;
  const how = relay
    ? `run \`replug relay\` or use ${hostNetFix(f)}`
    : (lib.fix[0] ?? 'restart them after a replug');
  return `${first}; libusb apps beside it will ${lib.works === 'unknown' ? 'maybe not' : 'not'} see replugs: ${how}`;
}

export function judge(facts: RuntimeFacts): DoctorVerdict {
  const judgements: Record<DetectionSource, Judgement> = {
    devfs: devfs(facts),
    sysfs: sysfs(facts),
    nusb: udevBroadcasts(facts, 'usb v3 events arrive'),
    uevent: uevent(facts),
    libusb: libusb(facts),
  };
  const byName = Object.fromEntries(
    (Object.keys(judgements) as DetectionSource[]).map((s) => [
      s,
      { source: s, label: LABELS[s], ...judgements[s] },
    ]),
  ) as Record<DetectionSource, SourceVerdict>;
  // The relay helps where kernel uevents arrive but udev's broadcasts don't: own netns, rootful.
  const relayRecommended =
    facts.usbBus.present &&
    facts.netns.kind === 'own' &&
    facts.kernelUevents.reach === 'yes' &&
    byName.libusb.works !== 'yes';
  return {
    sources: Object.values(byName),
    relayRecommended,
    overall: overallLine(facts, byName, relayRecommended),
  };
}
