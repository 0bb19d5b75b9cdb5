/**
 * The relay on a real kernel, inside a network + mount namespace this test creates (`unshare -n -m`), so
 * nothing it broadcasts reaches the machine's own namespace. The outer test re-runs this file under
 * unshare; inside, kernel uevents for a USB device are injected the kernel's own way: a message sent to
 * the kernel's uevent socket (port 0) is re-broadcast on group 1 with a kernel SEQNUM and sender port 0
 * (lib/kobject_uevent.c `uevent_net_rcv_skb`, Linux 4.18+) — exactly what a plug would deliver.
 * If `udevadm` is installed, libudev itself (with its BPF subsystem/devtype filter) must receive them.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { startRelay } from '../../src/relay/relay.js';
import { decodeUdevMessage } from '../../src/relay/udev-message.js';
import { GROUP_UDEV, openUeventSocket } from '../../src/usb/netlink.js';
import { UeventSource } from '../../src/usb/sources/uevent.js';
import type { SourceEvent } from '../../src/usb/types.js';
import fixture from '../fixtures/uevent/udevd-252-net-cpu.json' with { type: 'json' };
import { USB_DEVPATH, usbDeviceUevent, usbInterfaceUevent } from './usb-uevents.js';

const IN_NETNS = process.env.REPLUG_RELAY_IN_NETNS === '1';
const isRoot = process.getuid?.() === 0;
const hasUnshare = spawnSync('unshare', ['--version']).status === 0;

/** A kernel-format uevent without SEQNUM, wrapped in an nlmsghdr (type >= NLMSG_MIN_TYPE, NLM_F_REQUEST). */
function injection(kernelMessage: Buffer): Buffer {
  const text = kernelMessage.toString('latin1').replace(/SEQNUM=\d+\0/, '');
  const payload = Buffer.from(text, 'latin1');
  const header = Buffer.alloc(16);
  header.writeUInt32LE(16 + payload.length, 0);
  header.writeUInt16LE(0x10, 4);
  header.writeUInt16LE(0x01, 6);
  return Buffer.concat([header, payload]);
}

describe.runIf(IN_NETNS)('inside a private network + mount namespace', () => {
  it('relays injected kernel USB uevents to group-2 listeners and to libudev', async () => {
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', '/run']); // this mount namespace only
    const relay = await startRelay({ probeMs: 200, logger: silentLogger() });
    expect(relay.stats()).toMatchObject({ state: 'running', controlFile: 'created' });
    expect((await stat('/run/udev/control')).isFile()).toBe(true);

    const listener = await openUeventSocket();
    listener.bind([GROUP_UDEV]);
    const received: Buffer[] = [];
    listener.onMessage((m) => received.push(m));

    let udevadm: ChildProcess | undefined;
    let udevadmOut = '';
    if (existsSync('/usr/bin/udevadm') || existsSync('/bin/udevadm')) {
      udevadm = spawn('udevadm', ['monitor', '--udev', '--property', '--subsystem-match=usb/usb_device']);
      udevadm.stdout?.on('data', (d) => {
        udevadmOut += d;
      });
      await vi.waitFor(() => expect(udevadmOut).toContain('UDEV - the event which udev sends'), {
        timeout: 5000,
      });
    }

    const injector = await openUeventSocket();
    await injector.send(injection(usbInterfaceUevent('add')), 0);
    await injector.send(injection(usbDeviceUevent('add')), 0);
    await vi.waitFor(() => expect(received).toHaveLength(2), { timeout: 5000 });

    const device = decodeUdevMessage(received[1]!)!;
    expect(device.properties.get('DEVPATH')).toBe(USB_DEVPATH);
    expect(device.properties.get('DEVNAME')).toBe('/dev/bus/usb/001/004');
    expect(Number(device.properties.get('SEQNUM'))).toBeGreaterThan(0); // the kernel's, not ours
    expect(relay.stats()).toMatchObject({ received: 2, relayed: 2, errors: 0 });

    if (udevadm) {
      // libudev accepted our header, credentials and hashes; its BPF filter let the device through and
      // dropped the interface (devtype usb_interface).
      await vi.waitFor(() => expect(udevadmOut).toContain(`DEVPATH=${USB_DEVPATH}\n`), { timeout: 5000 });
      expect(udevadmOut).toContain('DEVNAME=/dev/bus/usb/001/004');
      expect(udevadmOut).toContain('ID_VENDOR_ID=1209');
      expect(udevadmOut).not.toContain(':1.0');
      udevadm.kill();
    }

    await relay.stop();
    await expect(stat('/run/udev/control')).rejects.toThrow();
    injector.close();
    listener.close();
  });

  it('the uevent source sees the same injected plug and unplug', async () => {
    const source = new UeventSource({ sysfsRoot: '/nonexistent-sysfs' });
    const events: SourceEvent[] = [];
    await source.start({ event: (e) => events.push(e), status: () => undefined });
    const injector = await openUeventSocket();
    await injector.send(injection(usbDeviceUevent('add', { devnum: '007' })), 0);
    await injector.send(injection(usbDeviceUevent('remove', { devnum: '007' })), 0);
    await vi.waitFor(() => expect(events.map((e) => e.type)).toEqual(['added', 'removed']), {
      timeout: 5000,
    });
    expect(events[0]!.device).toMatchObject({
      vid: '1209',
      pid: '0001',
      bus: 1,
      address: 7,
      portPath: '1-1.4',
    });
    injector.close();
    await source.stop();
  });

  it('refuses when a udev broadcaster is already active in this namespace', async () => {
    const fakeUdevd = await openUeventSocket();
    const real = Buffer.from(fixture.find((m) => m.group === 2)!.hex, 'hex');
    const timer = setInterval(() => void fakeUdevd.send(real, GROUP_UDEV), 50);
    try {
      await expect(startRelay({ probeMs: 400, logger: silentLogger() })).rejects.toMatchObject({
        code: ErrorCodes.RELAY_UDEV_PRESENT,
      });
    } finally {
      clearInterval(timer);
      fakeUdevd.close();
    }
  });
});

describe.skipIf(IN_NETNS)('relay on a real kernel', () => {
  it.skipIf(!isRoot || !hasUnshare)(
    'passes inside `unshare -n -m` (needs root)',
    () => {
      const here = fileURLToPath(import.meta.url);
      const repo = fileURLToPath(new URL('../../', import.meta.url));
      const vitest = fileURLToPath(new URL('../../node_modules/vitest/vitest.mjs', import.meta.url));
      const run = spawnSync(
        'unshare',
        ['-n', '-m', '--propagation', 'private', process.execPath, vitest, 'run', here],
        {
          cwd: repo,
          env: { ...process.env, REPLUG_RELAY_IN_NETNS: '1', CI: 'true', NO_COLOR: '1', FORCE_COLOR: '0' },
          encoding: 'utf8',
          timeout: 120_000,
        },
      );
      const output = `${run.stdout}\n${run.stderr}`;
      // Inside: the three namespace tests plus the file-level one pass; only this outer test skips.
      expect(output, output).toMatch(/Tests\s+4 passed \| 1 skipped/);
      expect(run.status, output).toBe(0);
    },
    150_000,
  );
});

// Keep the fixture reader honest: the file the captures came from is where the README says.
it('has the capture script next to the fixtures', async () => {
  const script = await readFile(new URL('../fixtures/uevent/capture.mjs', import.meta.url), 'utf8');
  expect(script).toContain('NETLINK_KOBJECT_UEVENT = 15');
});
