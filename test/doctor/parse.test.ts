import { describe, expect, it } from 'vitest';
import {
  cgroupVersion,
  isIdentityMap,
  kernelAtLeast,
  mountAt,
  parseCgroup,
  parseDevicesList,
  parseEnviron,
  parseIdMap,
  parseKernelVersion,
  parseMountinfo,
  parseNetDev,
  parseNsLink,
  usbRuleCoverage,
} from '../../src/doctor/parse.js';
import { procNetDev } from '../fixtures/doctor/tree.js';

describe('parseMountinfo', () => {
  it('reads fields around optional tags and the separator, unescaping octal', () => {
    const text = [
      '1071 1060 0:72 / /media/My\\040Disk rw,relatime - ext4 /dev/sdb1 rw',
      '717 708 0:5 /bus/usb /dev/bus/usb rw,nosuid,relatime master:2 shared:7 - devtmpfs udev rw,size=8119788k,mode=755',
      'garbage without separator',
      '',
    ].join('\n');
    const entries = parseMountinfo(text);
    expect(entries).toHaveLength(2);
    expect(entries[0]).toMatchObject({ mountPoint: '/media/My Disk', fsType: 'ext4', source: '/dev/sdb1' });
    expect(entries[1]).toEqual({
      root: '/bus/usb',
      mountPoint: '/dev/bus/usb',
      options: ['rw', 'nosuid', 'relatime'],
      fsType: 'devtmpfs',
      source: 'udev',
      superOptions: ['rw', 'size=8119788k', 'mode=755'],
    });
  });

  it('mountAt returns the last mount stacked on a point', () => {
    const entries = parseMountinfo(
      '24 27 0:6 / /dev rw - devtmpfs devtmpfs rw\n90 24 0:50 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k\n',
    );
    expect(mountAt(entries, '/dev')?.fsType).toBe('tmpfs');
    expect(mountAt(entries, '/sys')).toBeUndefined();
  });
});

describe('cgroup', () => {
  it('tells v1, v2 and hybrid apart', () => {
    expect(cgroupVersion(parseCgroup('0::/\n'))).toBe('v2');
    expect(cgroupVersion(parseCgroup('9:devices:/docker/abc\n1:name=systemd:/docker/abc\n'))).toBe('v1');
    expect(cgroupVersion(parseCgroup('5:devices:/\n0::/\n'))).toBe('hybrid');
    expect(cgroupVersion(parseCgroup(''))).toBe('unknown');
    expect(parseCgroup('2:cpu,cpuacct:/a:b')[0]).toEqual({
      id: '2',
      controllers: ['cpu', 'cpuacct'],
      path: '/a:b',
    });
  });

  it('devices.list coverage of usbfs (char 189): all, some minors, none; mknod-only rules do not count', () => {
    expect(usbRuleCoverage(parseDevicesList('a *:* rwm\n'))).toBe('all');
    expect(usbRuleCoverage(parseDevicesList('c 189:* rwm\n'))).toBe('all');
    expect(usbRuleCoverage(parseDevicesList('c *:* m\nb *:* m\nc 189:3 rwm\n'))).toBe('some');
    expect(usbRuleCoverage(parseDevicesList('c *:* m\nb *:* m\nc 1:3 rwm\n'))).toBe('none');
    expect(parseDevicesList('nonsense\nc 10:200 rwm')).toEqual([
      { type: 'c', major: 10, minor: 200, access: 'rwm' },
    ]);
  });
});

describe('uid_map and ns links', () => {
  it('identity only for the single full-range line', () => {
    expect(isIdentityMap(parseIdMap('         0          0 4294967295\n'))).toBe(true);
    expect(isIdentityMap(parseIdMap('0 1000 1\n1 100000 65536\n'))).toBe(false);
    expect(isIdentityMap(parseIdMap('0 100000 65536\n'))).toBe(false);
    expect(isIdentityMap(parseIdMap(''))).toBe(false);
  });

  it('parses magic-link targets', () => {
    expect(parseNsLink('net:[4026531833]')).toBe(4026531833);
    expect(parseNsLink('pid_for_children:[4026531836]')).toBe(4026531836);
    expect(parseNsLink('/some/path')).toBeUndefined();
  });
});

describe('small files', () => {
  it('/proc/net/dev names, skipping the two header lines', () => {
    expect(parseNetDev(procNetDev(['lo', 'eth0', 'docker0']))).toEqual(['lo', 'eth0', 'docker0']);
  });

  it('environ is NUL separated and values may contain =', () => {
    expect(parseEnviron('container=podman\0A=b=c\0\0')).toEqual({ container: 'podman', A: 'b=c' });
  });

  it('kernel versions', () => {
    expect(parseKernelVersion('6.18.44-fc-v657')).toEqual([6, 18]);
    expect(parseKernelVersion('garbage')).toBeUndefined();
    expect(kernelAtLeast([6, 18], 6, 18)).toBe(true);
    expect(kernelAtLeast([6, 1], 6, 18)).toBe(false);
    expect(kernelAtLeast([7, 0], 6, 18)).toBe(true);
    expect(kernelAtLeast(undefined, 4, 18)).toBe(false);
  });
});
