/**
 * The exact fixes doctor recommends, worded for the runtime found, so a user can paste them. Kubernetes has
 * no --device-cgroup-rule and LXC has its own config keys, so the same problem needs different words there.
 */
import type { RuntimeFacts, RuntimeKind } from './types.js';

function dockerish(kind: RuntimeKind): boolean {
  return kind === 'docker' || kind === 'podman' || kind === 'container' || kind === 'containerd';
}

/** Live /dev/bus/usb plus a cgroup rule for every usbfs minor, present or future. */
export function bindUsbFix(facts: RuntimeFacts): string {
  const kind = facts.runtime.kind;
  const nodes = facts.dev.busUsb === 'nodes' ? facts.dev.nodes : [];
  // One node is `--device`; many on a tmpfs /dev is usually --privileged, which copies /dev once at start.
  const snapshot =
    nodes.length === 1
      ? ` instead of --device /dev/bus/usb/${nodes[0]} (that node is a snapshot: a replugged device gets a new address)`
      : nodes.length > 1
        ? ` (the ${nodes.length} nodes here were copied at start, by --device or --privileged: a replugged device gets a new address)`
        : '';
  if (kind === 'kubernetes') {
    return 'mount a hostPath volume /dev/bus/usb at /dev/bus/usb and run the container privileged (Kubernetes has no device-cgroup-rule), or use a USB device plugin';
  }
  if (kind === 'lxc') {
    return 'lxc.mount.entry = /dev/bus/usb dev/bus/usb none bind,optional,create=dir and lxc.cgroup2.devices.allow = c 189:* rwm';
  }
  return `-v /dev/bus/usb:/dev/bus/usb --device-cgroup-rule='c 189:* rmw'${snapshot}`;
}

export function cgroupRuleFix(facts: RuntimeFacts): string {
  const kind = facts.runtime.kind;
  if (kind === 'kubernetes')
    return 'run the container privileged, or use a USB device plugin that allows char 189:*';
  if (kind === 'lxc') return 'lxc.cgroup2.devices.allow = c 189:* rwm';
  return "--device-cgroup-rule='c 189:* rmw' (allows every usbfs node, including the new address after a replug)";
}

/** udev broadcasts only exist in the host's network namespace; libudev also needs /run/udev. */
export function hostNetFix(facts: RuntimeFacts): string {
  const kind = facts.runtime.kind;
  if (kind === 'kubernetes') {
    return 'hostNetwork: true, plus a read-only hostPath volume /run/udev at /run/udev';
  }
  if (kind === 'lxc') return 'share the host network (lxc.net.0.type = none) and bind /run/udev read-only';
  if (!dockerish(kind) && kind !== 'native')
    return 'join the host network namespace and mount /run/udev read-only';
  return '--net=host -v /run/udev:/run/udev:ro';
}

export function runUdevMountFix(facts: RuntimeFacts): string {
  return facts.runtime.kind === 'kubernetes'
    ? 'a read-only hostPath volume /run/udev at /run/udev'
    : '-v /run/udev:/run/udev:ro (libudev switches its monitor off when /run/udev/control is missing and /dev is not devtmpfs)';
}

export function relayFix(facts: RuntimeFacts): string {
  const control = facts.udev.control ? '' : '; it creates /run/udev/control, which libusb checks';
  return `run \`replug relay\` (or \`replug agent --relay\`) in this container: it re-broadcasts the kernel's USB uevents here in udev's format (needs CAP_NET_ADMIN in this network namespace${control})`;
}
