/** Branches of the pure derivations that the crafted-tree scenarios do not reach. */
import { describe, expect, it } from 'vitest';
import { deriveFacts, deriveKernelUevents } from '../../src/doctor/derive.js';
import { deriveNetns } from '../../src/doctor/derive-netns.js';
import type { RawInputs } from '../../src/doctor/facts.js';
import type { NetnsFact, UsernsFact } from '../../src/doctor/types.js';

function raw(over: Partial<RawInputs> = {}): RawInputs {
  return {
    env: {},
    dockerenv: false,
    containerenv: undefined,
    selfCgroup: undefined,
    pid1Cgroup: undefined,
    mountinfo: undefined,
    pid1Environ: undefined,
    osrelease: undefined,
    ns: {},
    uidMap: undefined,
    procNetDev: undefined,
    sysClassNet: undefined,
    udevControl: false,
    udevData: false,
    devBusUsb: false,
    devNodes: [],
    devicesList: undefined,
    openResult: undefined,
    sysBusUsb: true,
    sysUsbDevices: [],
    ...over,
  };
}

describe('deriveNetns', () => {
  it('init_net fixed inode means host, whatever else is visible', () => {
    const n = deriveNetns(raw({ ns: { selfNet: 'net:[4026531833]' } }), [6, 18]);
    expect(n).toMatchObject({ kind: 'host', confidence: 'high' });
  });

  it('on kernels >= 6.18 any other inode is a private namespace', () => {
    const n = deriveNetns(raw({ ns: { selfNet: 'net:[4026532301]' } }), [6, 18]);
    expect(n).toMatchObject({ kind: 'own', confidence: 'high' });
  });

  it('before 6.18 the inode alone decides nothing', () => {
    expect(deriveNetns(raw({ ns: { selfNet: 'net:[4026531840]' } }), [6, 1]).kind).toBe('unknown');
  });

  it("in the initial pid namespace, pid 1's netns is the host's: different means own (ip netns exec)", () => {
    const n = deriveNetns(
      raw({ ns: { selfNet: 'net:[4026532500]', selfPid: 'pid:[4026531836]', pid1Net: 'net:[4026531840]' } }),
      [6, 1],
    );
    expect(n).toMatchObject({ kind: 'own', confidence: 'high' });
  });

  it('only lo is a private namespace with no network (--net=none)', () => {
    const n = deriveNetns(raw({ sysClassNet: [{ name: 'lo', hasDevice: false, virtual: true }] }), [6, 1]);
    expect(n.kind).toBe('own');
    expect(n.evidence[0]).toContain('--net=none');
  });

  it('falls back to /proc/net/dev names when sysfs class/net is unreadable', () => {
    const dev = (names: string[]) => names.map((n) => `${n}: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0`).join('\n');
    expect(deriveNetns(raw({ procNetDev: dev(['lo', 'eth0', 'docker0']) }), [6, 1])).toMatchObject({
      kind: 'host',
      confidence: 'low',
    });
    expect(deriveNetns(raw({ procNetDev: dev(['lo', 'eth0']) }), [6, 1])).toMatchObject({
      kind: 'own',
      confidence: 'low',
    });
    const unknown: NetnsFact = deriveNetns(raw({ ns: { pid1NetError: 'EACCES' } }), [6, 1]);
    expect(unknown.kind).toBe('unknown');
    expect(unknown.evidence).toContain('/proc/1/ns/net unreadable (EACCES)');
  });
});

describe('deriveKernelUevents', () => {
  const netns = (kind: NetnsFact['kind']): NetnsFact => ({
    kind,
    confidence: 'high',
    interfaces: [],
    evidence: [],
  });
  const userns = (kind: UsernsFact['kind']): UsernsFact => ({ kind, uidMap: '', evidence: [] });

  it('user namespaces lose uevents since 4.18 in their own netns, not before', () => {
    expect(deriveKernelUevents([6, 1], netns('own'), userns('own')).reach).toBe('no');
    expect(deriveKernelUevents([4, 14], netns('own'), userns('own')).reach).toBe('yes');
    expect(deriveKernelUevents([6, 1], netns('host'), userns('own')).reach).toBe('yes');
    expect(deriveKernelUevents([6, 1], netns('own'), userns('initial')).reach).toBe('yes');
    expect(deriveKernelUevents([6, 1], netns('unknown'), userns('unknown')).reach).toBe('unknown');
  });
});

describe('deriveRuntime via deriveFacts', () => {
  it('container=lxc in pid 1 environ is LXC', () => {
    const f = deriveFacts(
      raw({ pid1Environ: 'container=lxc\0PATH=/bin\0', ns: { selfPid: 'pid:[4026532100]' } }),
    );
    expect(f.runtime).toMatchObject({ kind: 'lxc', confidence: 'high' });
  });

  it('an overlay root with no marker is some container, low confidence when pid ns unknown', () => {
    const f = deriveFacts(raw({ mountinfo: '1 0 0:50 / / rw - overlay overlay rw,lowerdir=/a\n' }));
    expect(f.runtime).toMatchObject({ kind: 'container', confidence: 'low' });
  });

  it('/.dockerenv with an overlay root is Docker, not a VM', () => {
    const f = deriveFacts(
      raw({
        dockerenv: true,
        ns: { selfPid: 'pid:[4026531836]' },
        mountinfo: '1 0 0:50 / / rw - overlay overlay rw,lowerdir=/a\n',
      }),
    );
    expect(f.runtime.kind).toBe('docker');
  });

  it('containerd without Kubernetes (nerdctl, k3s ctr)', () => {
    const f = deriveFacts(raw({ selfCgroup: '0::/system.slice/cri-containerd-0123abcd.scope\n' }));
    expect(f.runtime.kind).toBe('containerd');
  });
});

describe('deriveNetns: /sys from another namespace', () => {
  it('(unshare --net) /proc/net/dev shows only lo while /sys/class/net shows the host NICs: own netns', () => {
    const n = deriveNetns(
      raw({
        procNetDev: 'lo: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n',
        sysClassNet: [
          { name: 'eth0', hasDevice: true, virtual: false, ifindex: 2, iflink: 2 },
          { name: 'lo', hasDevice: false, virtual: true, ifindex: 1, iflink: 1 },
        ],
      }),
      [6, 1],
    );
    expect(n).toMatchObject({ kind: 'own', confidence: 'medium', interfaces: ['lo'] });
    expect(n.evidence[0]).toContain('/sys was mounted in another network namespace');
  });
});
