import { describe, expect, it } from 'vitest';
import type { TryOpen } from '../../src/doctor/facts.js';
import { factsFor } from '../fixtures/doctor/collect.js';
import {
  dockerBridge,
  dockerHostNet,
  dockerSingleDevice,
  kubernetesPod,
  nativeHost,
  noUsbBus,
  rootlessPodman,
} from '../fixtures/doctor/scenarios.js';

const K8S_ENV = { KUBERNETES_SERVICE_HOST: '10.43.0.1', KUBERNETES_SERVICE_PORT: '443' };

describe('collectFacts on crafted trees', () => {
  it('native host: devtmpfs, udev present, initial namespaces', async () => {
    const opened: string[] = [];
    const tryOpen: TryOpen = async (path) => {
      opened.push(path);
      return 'ok';
    };
    const f = await factsFor(nativeHost, {}, { tryOpen });
    expect(f.runtime).toMatchObject({ kind: 'native', confidence: 'high' });
    expect(f.netns).toMatchObject({ kind: 'host', confidence: 'high', inode: 4026531840 });
    expect(f.netns.evidence[0]).toContain('pid 1');
    expect(f.udev).toMatchObject({ control: true, dataDir: true });
    expect(f.dev).toMatchObject({
      kind: 'devtmpfs',
      busUsb: 'live',
      nodes: ['001/001', '001/002', '002/001'],
    });
    expect(f.cgroup).toMatchObject({ version: 'v2', usbAccess: 'allowed' });
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatch(/dev[/]bus[/]usb[/]001[/]001$/);
    expect(f.userns.kind).toBe('initial');
    // Interfaces (`1-1:1.0`) are not devices; root hubs are.
    expect(f.usbBus).toMatchObject({ present: true, deviceCount: 4, sysfsMode: 'rw' });
    expect(f.kernelUevents.reach).toBe('yes');
    expect(f.kernel).toBe('6.1.0-rpi7-rpi-v8');
  });

  it('Docker bridge: overlay root, tmpfs /dev with /dev/bus/usb bound, veth eth0, no /run/udev', async () => {
    const f = await factsFor(dockerBridge, {}, { tryOpen: async () => 'ok' });
    expect(f.runtime.kind).toBe('docker');
    expect(f.runtime.confidence).toBe('high');
    expect(f.runtime.evidence.join('\n')).toContain('/var/lib/docker/containers/');
    expect(f.netns).toMatchObject({ kind: 'own', confidence: 'medium', interfaces: ['eth0', 'lo'] });
    expect(f.netns.evidence.join('\n')).toContain('iflink=16 != ifindex=15');
    expect(f.udev).toMatchObject({ control: false, dataDir: false });
    expect(f.dev).toMatchObject({ kind: 'tmpfs', busUsb: 'bind', boundNodes: [] });
    expect(f.dev.evidence.join('\n')).toContain('/dev/bus/usb mounted from devtmpfs /bus/usb');
    expect(f.cgroup).toMatchObject({ version: 'v2', usbAccess: 'allowed' });
    expect(f.userns.kind).toBe('initial');
    expect(f.usbBus.sysfsMode).toBe('ro');
    expect(f.kernelUevents.reach).toBe('yes');
  });

  it('Docker --net=host: host NICs and docker0 visible, /run/udev mounted read-only', async () => {
    const f = await factsFor(dockerHostNet);
    expect(f.runtime.kind).toBe('docker');
    expect(f.netns.kind).toBe('host');
    expect(f.netns.evidence.join('\n')).toMatch(/hardware NIC visible: enp3s0/);
    expect(f.netns.evidence.join('\n')).toMatch(/docker0, veth5a1c2d3/);
    expect(f.udev.control).toBe(true);
    expect(f.udev.evidence[0]).toBe('/run/udev mounted (tmpfs, ro)');
    expect(f.kernelUevents.reach).toBe('yes');
  });

  it('rootless Podman: .containerenv, remapped uid_map, EACCES on open is file mode, not cgroup', async () => {
    const f = await factsFor(rootlessPodman, {}, { tryOpen: async () => 'EACCES' });
    expect(f.runtime.kind).toBe('podman');
    expect(f.runtime.evidence).toContain('/run/.containerenv present (engine=podman-4.3.1)');
    expect(f.userns.kind).toBe('own');
    expect(f.userns.uidMap).toBe('0 1000 1 1 100000 65536');
    expect(f.userns.evidence.join('\n')).toContain('user:[4026532409] is not the initial user namespace');
    expect(f.netns).toMatchObject({ kind: 'own', confidence: 'low' });
    expect(f.cgroup.usbAccess).toBe('unknown');
    expect(f.cgroup.openResult).toEqual({ node: '/dev/bus/usb/001/001', outcome: 'EACCES' });
    expect(f.cgroup.evidence.join('\n')).toContain('file permissions, not the cgroup');
    expect(f.kernelUevents.reach).toBe('no');
  });

  it('Docker --device /dev/bus/usb/001/004 on cgroup v1: a single snapshot node, one minor allowed', async () => {
    const f = await factsFor(dockerSingleDevice, {}, { tryOpen: async () => 'ok' });
    expect(f.runtime.kind).toBe('docker');
    expect(f.runtime.evidence.join('\n')).toContain(`/proc/self/cgroup: 12:pids:/docker/`);
    expect(f.dev).toMatchObject({ kind: 'tmpfs', busUsb: 'nodes', nodes: ['001/004'] });
    expect(f.cgroup).toMatchObject({ version: 'hybrid', usbAccess: 'some' });
    expect(f.cgroup.evidence.join('\n')).toContain('13 rules');
  });

  it('Kubernetes pod: env, kubepods cgroup and kubelet mounts; no /dev/bus/usb; cgroup denies usb', async () => {
    const f = await factsFor(kubernetesPod, K8S_ENV);
    expect(f.runtime).toMatchObject({ kind: 'kubernetes', confidence: 'high' });
    const ev = f.runtime.evidence.join('\n');
    expect(ev).toContain('env KUBERNETES_SERVICE_HOST=10.43.0.1');
    expect(ev).toContain('kubepods/besteffort');
    expect(ev).toContain('/kubelet/pods/');
    expect(f.dev.busUsb).toBe('absent');
    expect(f.cgroup.usbAccess).toBe('denied');
    expect(f.netns.kind).toBe('own');
  });

  it('Kubernetes is recognised from the cgroup and mounts alone (env cleared by the pod spec)', async () => {
    const f = await factsFor(kubernetesPod);
    expect(f.runtime.kind).toBe('kubernetes');
  });

  it('no USB bus, in a VM with a leftover /.dockerenv: native, host netns by fixed inode', async () => {
    const f = await factsFor(noUsbBus);
    expect(f.usbBus).toMatchObject({ present: false, deviceCount: 0 });
    expect(f.runtime.kind).toBe('native');
    expect(f.runtime.evidence.join('\n')).toContain('/.dockerenv present but nothing else says container');
    expect(f.netns).toMatchObject({ kind: 'host', confidence: 'high', inode: 4026531833 });
    expect(f.dev.busUsb).toBe('absent');
    expect(f.cgroup.usbAccess).toBe('allowed');
  });

  it('reports unknowns honestly when /proc is mostly unreadable', async () => {
    const f = await factsFor({ ...dockerBridge, mountinfo: '', selfCgroup: '', ifaces: [], procNetDev: '' });
    expect(f.cgroup.usbAccess).toBe('allowed');
    expect(f.dev.kind).toBe('unknown');
    expect(f.netns.kind).toBe('unknown');
    expect(f.kernelUevents.reach).toBe('yes');
  });
});
