import { describe, expect, it } from 'vitest';
import { formatReport, runtimeInfo, summarize } from '../../src/doctor/format.js';
import { judge } from '../../src/doctor/verdict.js';
import { factsFor } from '../fixtures/doctor/collect.js';
import { dockerBridge, dockerSingleDevice, rootlessPodman } from '../fixtures/doctor/scenarios.js';

describe('summarize and runtimeInfo', () => {
  it('Docker bridge: the one line the agent logs at start', async () => {
    const f = await factsFor(dockerBridge, {}, { tryOpen: async () => 'ok' });
    expect(summarize(f)).toBe(
      'runtime=docker netns=own udev=absent dev=tmpfs+bind(/dev/bus/usb) cgroup=allowed userns=initial usb-bus=present uevents=yes',
    );
    expect(runtimeInfo(f)).toEqual({
      runtime: 'docker',
      netns: 'own',
      udev: 'absent',
      devfs: 'tmpfs',
      busUsb: 'bind',
      cgroupUsb: 'allowed',
      userns: 'initial',
      usbBus: true,
      kernelUevents: 'yes',
      kernel: '6.1.0-18-amd64',
    });
    // The info topic carries it as JSON: it must survive a round trip unchanged.
    expect(JSON.parse(JSON.stringify(runtimeInfo(f)))).toEqual(runtimeInfo(f));
  });

  it('snapshot nodes and remapped users show in the summary', async () => {
    expect(summarize(await factsFor(dockerSingleDevice))).toContain('dev=tmpfs+nodes(1) cgroup=some');
    expect(summarize(await factsFor(rootlessPodman, {}, { tryOpen: async () => 'EACCES' }))).toContain(
      'runtime=podman netns=own udev=absent dev=tmpfs+bind(/dev/bus/usb) cgroup=unknown userns=own',
    );
  });
});

describe('formatReport', () => {
  it('lists facts with evidence, each source with why and fixes, the relay and the verdict', async () => {
    const f = await factsFor(dockerSingleDevice);
    const text = formatReport(f, judge(f));
    const lines = text.split('\n');
    expect(lines[0]).toBe('replug doctor');
    expect(text).toContain('  runtime          docker (high confidence)');
    expect(text).toContain('devices.list: c 1:5 rwm; c 1:3 rwm; c 1:9 rwm; c 1:8 rwm; ... (13 rules)');
    const devfsAt = lines.findIndex((l) => l.includes('devfs inotify'));
    expect(lines[devfsAt]).toMatch(/^ {2}PARTIAL +devfs inotify/);
    expect(lines[devfsAt + 2]).toMatch(
      /^ +fix: -v \/dev\/bus\/usb:\/dev\/bus\/usb --device-cgroup-rule='c 189:\* rmw'/,
    );
    expect(text).toContain('or:  --net=host -v /run/udev:/run/udev:ro');
    expect(text).toContain('Recommended: `replug relay`');
    expect(lines.at(-1)).toMatch(
      /^Verdict: replug will see replugs via sysfs\+uevent but cannot reliably open devices/,
    );
  });
});
