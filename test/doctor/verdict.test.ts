import { describe, expect, it } from 'vitest';
import type { TryOpen } from '../../src/doctor/facts.js';
import {
  type DetectionSource,
  type DoctorVerdict,
  judge,
  type SourceVerdict,
} from '../../src/doctor/verdict.js';
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
import type { TreeSpec } from '../fixtures/doctor/tree.js';

async function verdictFor(spec: TreeSpec, env = {}, tryOpen: TryOpen = async () => 'ok') {
  const v = judge(await factsFor(spec, env, { tryOpen }));
  const by = Object.fromEntries(v.sources.map((s) => [s.source, s])) as Record<
    DetectionSource,
    SourceVerdict
  >;
  return { v, by };
}

function works(v: DoctorVerdict): Record<string, string> {
  return Object.fromEntries(v.sources.map((s) => [s.source, s.works]));
}

describe('judge', () => {
  it('native host with udevd: every source works, nothing to fix', async () => {
    const { v } = await verdictFor(nativeHost);
    expect(works(v)).toEqual({ devfs: 'yes', sysfs: 'yes', nusb: 'yes', uevent: 'yes', libusb: 'yes' });
    expect(v.sources.every((s) => s.fix.length === 0)).toBe(true);
    expect(v.relayRecommended).toBe(false);
    expect(v.overall).toBe(
      'replug will reconnect here via devfs+sysfs+uevent+nusb; libusb apps beside it will see replugs too',
    );
  });

  it('Docker bridge, rootful: replug fine via devfs+sysfs+uevent; udev listeners need the relay or --net=host', async () => {
    const { v, by } = await verdictFor(dockerBridge);
    expect(works(v)).toEqual({ devfs: 'yes', sysfs: 'yes', nusb: 'no', uevent: 'yes', libusb: 'no' });
    expect(by.nusb.why).toContain('moby/moby#35359');
    expect(by.nusb.fix[0]).toContain('`replug relay`');
    expect(by.nusb.fix[0]).toContain('creates /run/udev/control');
    expect(by.nusb.fix[1]).toBe('--net=host -v /run/udev:/run/udev:ro');
    expect(by.libusb.fix).toEqual(by.nusb.fix);
    expect(v.relayRecommended).toBe(true);
    expect(v.overall).toBe(
      'replug will reconnect here via devfs+sysfs+uevent; libusb apps beside it will not see replugs: run `replug relay` or use --net=host -v /run/udev:/run/udev:ro',
    );
  });

  it('Docker --net=host with /run/udev: udev listeners work, no relay', async () => {
    const { v } = await verdictFor(dockerHostNet);
    expect(works(v)).toEqual({ devfs: 'yes', sysfs: 'yes', nusb: 'yes', uevent: 'yes', libusb: 'yes' });
    expect(v.relayRecommended).toBe(false);
  });

  it('Docker --net=host without /run/udev: libudev turns its monitor off, mount /run/udev', async () => {
    const { v, by } = await verdictFor({
      ...dockerHostNet,
      udev: {},
      mountinfo: dockerHostNet.mountinfo.replace(/^.* \/run\/udev .*\n/m, ''),
    });
    expect(by.nusb.works).toBe('unknown');
    expect(by.libusb.works).toBe('no');
    expect(by.libusb.why).toContain('/run/udev/control is missing');
    expect(by.libusb.fix[0]).toMatch(/^-v \/run\/udev:\/run\/udev:ro/);
    expect(v.relayRecommended).toBe(false);
  });

  it('rootless Podman: sysfs rescan only; kernel uevents do not arrive, so no relay; EACCES needs a host udev rule', async () => {
    const { v, by } = await verdictFor(rootlessPodman, {}, async () => 'EACCES');
    expect(works(v)).toEqual({ devfs: 'partial', sysfs: 'yes', nusb: 'no', uevent: 'no', libusb: 'no' });
    expect(by.devfs.fix[0]).toContain('MODE="0666"');
    expect(by.uevent.why).toContain('4.18');
    expect(by.nusb.fix).toEqual(['--net=host -v /run/udev:/run/udev:ro']);
    expect(v.relayRecommended).toBe(false);
    expect(v.overall).toMatch(/^replug will see replugs via sysfs but cannot reliably open devices/);
    expect(v.overall).not.toContain('replug relay');
  });

  it('Docker --device /dev/bus/usb/001/004: partial, fix replaces the snapshot with a bind plus cgroup rule', async () => {
    const { v, by } = await verdictFor(dockerSingleDevice);
    expect(by.devfs.works).toBe('partial');
    expect(by.devfs.why).toContain('001/004');
    expect(by.devfs.fix).toEqual([
      "-v /dev/bus/usb:/dev/bus/usb --device-cgroup-rule='c 189:* rmw' instead of --device /dev/bus/usb/001/004 (that node is a snapshot: a replugged device gets a new address)",
    ]);
    expect(by.libusb.works).toBe('no');
    expect(by.libusb.fix).toContain(by.devfs.fix[0]);
    expect(v.relayRecommended).toBe(true);
  });

  it('Docker bridge whose cgroup allows only the minors present at start: partial with a cgroup rule', async () => {
    const { by } = await verdictFor({
      ...dockerSingleDevice,
      mountinfo: dockerBridge.mountinfo,
      devNodes: ['001/001', '001/004'],
    });
    expect(by.devfs.works).toBe('partial');
    expect(by.devfs.fix[0]).toMatch(/^--device-cgroup-rule='c 189:\* rmw'/);
  });

  it('Kubernetes pod without USB: hostPath + privileged (no device-cgroup-rule), hostNetwork for udev', async () => {
    const { v, by } = await verdictFor(kubernetesPod, { KUBERNETES_SERVICE_HOST: '10.43.0.1' });
    expect(by.devfs.works).toBe('no');
    expect(by.devfs.fix[0]).toContain('hostPath volume /dev/bus/usb');
    expect(by.devfs.fix[0]).not.toContain('--device-cgroup-rule');
    expect(by.nusb.fix[1]).toBe('hostNetwork: true, plus a read-only hostPath volume /run/udev at /run/udev');
    expect(v.overall).toContain('cannot reliably open devices: mount a hostPath volume');
  });

  it('no USB bus: every source says so, and the agent keeps running', async () => {
    const { v } = await verdictFor(noUsbBus);
    expect(v.sources.every((s) => s.works === 'no' && s.why.includes('/sys/bus/usb absent'))).toBe(true);
    expect(v.overall).toMatch(/^no USB bus here/);
    expect(v.relayRecommended).toBe(false);
  });

  it('native host without udevd: replug fine, usb v3 events and libusb hotplug absent', async () => {
    const { v, by } = await verdictFor({ ...nativeHost, udev: {} });
    expect(by.nusb.works).toBe('no');
    expect(by.nusb.fix[0]).toContain('systemd-udevd');
    expect(by.libusb.fix).toContain('or use a libusb built with --disable-udev (netlink backend)');
    expect(v.overall).toMatch(/^replug will reconnect here via devfs\+sysfs\+uevent;/);
  });
});

describe('judge: --privileged copies /dev once', () => {
  it('many snapshot nodes on tmpfs: the fix names the copy, not a single --device', async () => {
    const { by } = await verdictFor({
      ...dockerSingleDevice,
      devNodes: ['001/001', '001/004', '002/001'],
      devicesList: 'a *:* rwm\n',
    });
    expect(by.devfs.works).toBe('partial');
    expect(by.devfs.fix[0]).toContain('the 3 nodes here were copied at start, by --device or --privileged');
  });
});
